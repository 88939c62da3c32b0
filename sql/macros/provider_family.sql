/* provider_family(provider): a LiteLLM provider name (a catalog entry's litellm_provider, or a
   logged provider once mapped to the catalog's) as the family its keys share, so a bare catalog
   key of the logged provider beats another provider's: vertex_ai-anthropic_models -> vertex_ai,
   bedrock_converse -> bedrock, text-completion-openai -> openai. */
create or replace macro provider_family(provider) as
    case
        when provider like 'vertex_ai%' then 'vertex_ai'
        when provider like 'bedrock%' then 'bedrock'
        when provider = 'text-completion-openai' then 'openai'
        else provider
    end
