--[[
session_append.lua: append one turn (the new user messages and the final
answer) to a session atomically, pin the session to the backend that
answered, cap the history and release the caller's lock.

The append does not depend on the lock: a request whose lease ran out
still stores its turn (nothing is lost), it only leaves another holder's
lock alone.  The first append creates the session, owned by ARGV[1].

An append is retried by the engine when its reply is lost (timeout,
connection reset), so it is idempotent per token: the meta hash keeps
the tokens of the last 16 appends (field tokens, space-separated), and
a token found there again changes nothing.  A token that
session_settle.lua fenced ("!" + token in tokens: the engine gave up on
it and reported the turn unknown, then not stored) is refused, so that a
late copy cannot contradict what the engine settled.

KEYS[1]  meta hash   (see session_get.lua)
KEYS[2]  turns list
KEYS[3]  lock
ARGV[1]  owner: hex hash of the caller's bearer token
ARGV[2]  token of the calling request ("" if it took no lock)
ARGV[3]  ttl_ms: session lifetime from now (> 0)
ARGV[4]  max_turns: turns kept, oldest dropped first (0: no cap)
ARGV[5]  backend the session is pinned to ("": keep the current one)
ARGV[6]  now_ms
ARGV[7]  the turn: its messages as JSON objects joined by commas

Returns {turns, dropped}: turns kept after the append, and how many of
the oldest turns this append dropped.
Errors: "NOTOWNER ..." the session belongs to another owner (nothing
written); "FENCED ..." the token was settled as not stored (nothing
written); "ERR session_append: ..." on a bad argument.
]]

local owner = redis.call('HGET', KEYS[1], 'owner')
if owner and owner ~= ARGV[1] then
    return redis.error_reply('NOTOWNER session belongs to another API key')
end

local ttl = tonumber(ARGV[3])
local cap = tonumber(ARGV[4]) or 0
local turn = ARGV[7]
if ARGV[1] == nil or ARGV[1] == '' then
    return redis.error_reply('ERR session_append: empty owner')
end
if ttl == nil or ttl <= 0 then
    return redis.error_reply('ERR session_append: bad ttl_ms')
end
if turn == nil or turn == '' then
    return redis.error_reply('ERR session_append: empty turn')
end

local token = ARGV[2] or ''
local tokens = redis.call('HGET', KEYS[1], 'tokens') or ''
if token ~= '' then
    local padded = ' ' .. tokens .. ' '
    if string.find(padded, ' !' .. token .. ' ', 1, true) then
        return redis.error_reply('FENCED this request\'s turn was settled '
                                 .. 'as not stored')
    end
    if string.find(padded, ' ' .. token .. ' ', 1, true)
       or (owner and redis.call('HGET', KEYS[1], 'last_token') == token) then
        if redis.call('GET', KEYS[3]) == token then
            redis.call('DEL', KEYS[3])
        end
        return {redis.call('LLEN', KEYS[2]), 0}
    end
end

local n = redis.call('RPUSH', KEYS[2], turn)
local dropped = 0
if cap > 0 and n > cap then
    dropped = n - cap
    redis.call('LTRIM', KEYS[2], dropped, -1)
    n = cap
end

local now = ARGV[6] or '0'
if not owner then
    redis.call('HSET', KEYS[1], 'owner', ARGV[1], 'created_ms', now)
end
redis.call('HSET', KEYS[1], 'turns', n, 'updated_ms', now)
if token ~= '' then
    -- the newest 16 tokens, oldest first
    local kept = {}
    for t in string.gmatch(tokens, '%S+') do
        kept[#kept + 1] = t
    end
    kept[#kept + 1] = token
    while #kept > 16 do
        table.remove(kept, 1)
    end
    redis.call('HSET', KEYS[1], 'last_token', token,
               'tokens', table.concat(kept, ' '))
end
if dropped > 0 then
    redis.call('HINCRBY', KEYS[1], 'dropped', dropped)
end
if ARGV[5] and ARGV[5] ~= '' then
    redis.call('HSET', KEYS[1], 'backend', ARGV[5])
end
redis.call('PEXPIRE', KEYS[1], string.format('%d', ttl))
redis.call('PEXPIRE', KEYS[2], string.format('%d', ttl))

if token ~= '' and redis.call('GET', KEYS[3]) == token then
    redis.call('DEL', KEYS[3])
end
return {n, dropped}
