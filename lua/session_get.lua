--[[
session_get.lua: read a session's history and, with a token, take the
session's lock so that a second concurrent request on it is refused
(the engine answers 409) instead of both answering from the same history.

Keys (all of one session; the id is in a hash tag, {id}, so that they
share a cluster slot):
KEYS[1]  meta hash: owner, backend, turns, dropped, created_ms, updated_ms,
         last_token (the last append's, see session_append.lua)
KEYS[2]  turns list: one element per turn, the turn's messages as JSON
         objects joined by commas (no brackets)
KEYS[3]  lock: the token of the request holding the session

ARGV[1]  owner: hex hash of the caller's bearer token
ARGV[2]  token: unique id of the calling request ("" to read unlocked)
ARGV[3]  lease_ms: the lock's lifetime, so that a crashed engine does
         not block the session for longer (required with a token); the
         holder renews it with session_refresh.lua while it runs
ARGV[4]  ttl_ms: session TTL refreshed by the read (0: leave it)

Returns {found, backend, dropped, turn1, ..., turnN}: found is 1 when the
session exists (0: a new session, backend "" and no turns), backend the
one it is pinned to ("" if none), dropped the number of turns dropped by
the history cap so far.
Errors: "NOTOWNER ..." the session belongs to another owner (checked first;
the lock is not touched); "SESSIONBUSY ..." another token holds the lock.
(Redis 7 turns an error without a message into "ERR CODE", hence the
messages.)
]]

local owner = redis.call('HGET', KEYS[1], 'owner')
if owner and owner ~= ARGV[1] then
    return redis.error_reply('NOTOWNER session belongs to another API key')
end

local token = ARGV[2] or ''
if token ~= '' then
    local lease = tonumber(ARGV[3])
    if lease == nil or lease <= 0 then
        return redis.error_reply('ERR session_get: bad lease_ms')
    end
    local ok = redis.call('SET', KEYS[3], token, 'NX', 'PX',
                          string.format('%d', lease))
    if not ok then
        if redis.call('GET', KEYS[3]) ~= token then
            return redis.error_reply('SESSIONBUSY session in use by another request')
        end
        redis.call('PEXPIRE', KEYS[3], string.format('%d', lease))
    end
end

if not owner then
    return {0, '', 0}
end

local ttl = tonumber(ARGV[4]) or 0
if ttl > 0 then
    redis.call('PEXPIRE', KEYS[1], string.format('%d', ttl))
    redis.call('PEXPIRE', KEYS[2], string.format('%d', ttl))
end

local meta = redis.call('HMGET', KEYS[1], 'backend', 'dropped')
local out = {1, meta[1] or '', tonumber(meta[2]) or 0}
local turns = redis.call('LRANGE', KEYS[2], 0, -1)
for i = 1, #turns do
    out[#out + 1] = turns[i]
end
return out
