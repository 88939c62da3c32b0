/* pseudonymised(user_id, pseudonymise, inner_pad, outer_pad): the user id every mart shows - with
   privacy.pseudonymise_user_id, `u_` + the first 24 hex digits of its keyed hash; 'anonymous' (no
   user logged) stays readable, it names no one. fct_requests applies it to every call; a model
   matching configured user ids (savings.service_accounts) applies it to those. */
create or replace macro pseudonymised(user_id, pseudonymise, inner_pad, outer_pad) as
    case when pseudonymise and user_id <> 'anonymous'
        then 'u_' || left(hmac_sha256(inner_pad, outer_pad, user_id), 24)
        else user_id
    end
