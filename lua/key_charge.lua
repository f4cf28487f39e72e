--[[
key_charge.lua: charge a client key for one finished request.  A window
starts with its first charge and lasts its length (PEXPIRE on a counter
that has none).

KEYS[1..3]  as key_admit.lua: requests and tokens in the short window,
            tokens in the day
ARGV[1]     requests to add (1)
ARGV[2]     tokens the request cost the GPUs
ARGV[3]     the short window, ms
ARGV[4]     the day, ms

Returns the three counters after the charge.
]]

local add = {tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[2])}
local window = {ARGV[3], ARGV[3], ARGV[4]}
local out = {}
for i = 1, 3 do
    out[i] = redis.call('INCRBY', KEYS[i], add[i])
    if redis.call('PTTL', KEYS[i]) < 0 then
        redis.call('PEXPIRE', KEYS[i], window[i])
    end
end
return out
