--[[
key_charge.lua: charge a client key the tokens one finished request cost
the GPUs.  A window starts with its first charge and lasts its length
(PEXPIRE on a counter that has none).

KEYS[1]  tokens in the key's short window        ({prefix}key:{NAME}:tok)
KEYS[2]  tokens in the key's day                 ({prefix}key:{NAME}:day)
ARGV[1]  tokens the request cost the GPUs
ARGV[2]  the short window, ms
ARGV[3]  the day, ms

Returns the two counters after the charge.
]]

local out = {}
local window = {ARGV[2], ARGV[3]}
for i = 1, 2 do
    out[i] = redis.call('INCRBY', KEYS[i], ARGV[1])
    if redis.call('PTTL', KEYS[i]) < 0 then
        redis.call('PEXPIRE', KEYS[i], window[i])
    end
end
return out
