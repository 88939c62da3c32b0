/* hmac_sha256(inner_pad, outer_pad, message): HMAC-SHA256 of `message` (UTF-8) as 64 hex digits,
   given the key's pads, (K' xor 0x36..) and (K' xor 0x5c..) as 64-byte BLOBs
   (pipelines/lib/sqlmodels.py pseudonym_parameters computes them). It takes the pads, not the
   key, as arguments: the macro is persisted in the warehouse and holds no secret, and callers
   pass the pads as statement parameters. NULL pads give NULL. */
create or replace macro hmac_sha256(inner_pad, outer_pad, message) as
    sha256(outer_pad || unhex(sha256(inner_pad || encode(message))))
