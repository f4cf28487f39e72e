--[[
key_refund.lua: give back the request key_admit.lua counted for a request
refused before any work (a strategy its key may not use).  Only a window
still open is lowered (DECR keeps its TTL); a window that ended since has
nothing of it.

KEYS[1]  requests in the key's short window      ({prefix}key:{NAME}:req)
ARGV[]   none

Returns the counter after the refund.
]]

local used = tonumber(redis.call('GET', KEYS[1]) or '0') or 0
if used > 0 then
    return redis.call('DECR', KEYS[1])
end
return used
