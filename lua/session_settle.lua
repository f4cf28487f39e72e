--[[
session_settle.lua: settle an append whose outcome the engine could not
learn (a copy was sent, its reply lost, and every retry failed; the
client was told "may or may not have been stored").  Says whether the
request's turn is stored and makes the answer final: a turn not stored
is fenced, so that a copy still on its way (in a dead connection's
buffer) is refused by session_append.lua rather than stored later.
Releases the request's lock either way.

KEYS[1]  meta hash   (see session_get.lua)
KEYS[2]  turns list
KEYS[3]  lock
ARGV[1]  token of the request whose append is settled (not "")
ARGV[2]  ttl_ms: the meta hash's lifetime when this creates it (> 0)

Returns {stored, turns}: stored 1 when the token's turn is in the
session, 0 when it is not (and now never will be); turns the turns kept.
Errors: "ERR session_settle: ..." on a bad argument.
]]

local token = ARGV[1] or ''
local ttl = tonumber(ARGV[2])
if token == '' or string.find(token, '%s') then
    return redis.error_reply('ERR session_settle: bad token')
end
if ttl == nil or ttl <= 0 then
    return redis.error_reply('ERR session_settle: bad ttl_ms')
end

local tokens = redis.call('HGET', KEYS[1], 'tokens') or ''
local padded = ' ' .. tokens .. ' '
local stored = 0
if string.find(padded, ' ' .. token .. ' ', 1, true)
   or redis.call('HGET', KEYS[1], 'last_token') == token then
    stored = 1
elseif not string.find(padded, ' !' .. token .. ' ', 1, true) then
    local kept = {}
    for t in string.gmatch(tokens, '%S+') do
        kept[#kept + 1] = t
    end
    kept[#kept + 1] = '!' .. token
    while #kept > 16 do
        table.remove(kept, 1)
    end
    redis.call('HSET', KEYS[1], 'tokens', table.concat(kept, ' '))
    if redis.call('PTTL', KEYS[1]) < 0 then
        redis.call('PEXPIRE', KEYS[1], string.format('%d', ttl))
    end
end

if redis.call('GET', KEYS[3]) == token then
    redis.call('DEL', KEYS[3])
end
return {stored, redis.call('LLEN', KEYS[2])}
