--[[
key_admit.lua: may a client key start one more request?  Tokens are only
read (the request is charged when it ends, key_charge.lua); an admitted
request is counted in the request window at once, so that a burst of
concurrent requests cannot pass a requests-per-window limit together.

KEYS[1]  requests in the key's short window      ({prefix}key:{NAME}:req)
KEYS[2]  tokens in the key's short window        ({prefix}key:{NAME}:tok)
KEYS[3]  tokens in the key's day                 ({prefix}key:{NAME}:day)
ARGV[1..3]  the limits of KEYS[1..3]; 0: none
ARGV[4]  the short window, ms (a request window starts with its first
         request)

Returns {over, retry_ms, used1, used2, used3}: over is 0 when every
window had room (used1 then counts this request), else the index of the
full window that reopens last, and retry_ms how long until it does (its
TTL).
]]

local limits = {tonumber(ARGV[1]) or 0, tonumber(ARGV[2]) or 0,
                tonumber(ARGV[3]) or 0}
local over, retry = 0, 0
local used = {}
for i = 1, 3 do
    used[i] = tonumber(redis.call('GET', KEYS[i]) or '0') or 0
    if limits[i] > 0 and used[i] >= limits[i] then
        local ttl = redis.call('PTTL', KEYS[i])
        if ttl < 0 then
            ttl = 1000
        end
        if ttl >= retry then
            over, retry = i, ttl
        end
    end
end
if over == 0 and limits[1] > 0 then
    used[1] = redis.call('INCR', KEYS[1])
    if redis.call('PTTL', KEYS[1]) < 0 then
        redis.call('PEXPIRE', KEYS[1], ARGV[4])
    end
end
return {over, retry, used[1], used[2], used[3]}
