--[[
session_refresh.lua: the heartbeat of a session's lock.  The engine
holding the lock (taken by session_get.lua) sends this every third of
the lease while its request runs, so that the lock lives as long as the
request and, when the engine dies, at most one lease longer.  Only the
holder's token refreshes it.

KEYS[1]  lock key (see session_get.lua)
ARGV[1]  token of the request that took the lock
ARGV[2]  lease_ms: the lock's lifetime from now (> 0)

Returns 1 when the lock was refreshed, 0 when the token no longer holds
it (it expired, or another request took it).
Errors: "ERR session_refresh: ..." on a bad argument.
]]

local lease = tonumber(ARGV[2])
if lease == nil or lease <= 0 then
    return redis.error_reply('ERR session_refresh: bad lease_ms')
end
if ARGV[1] ~= '' and redis.call('GET', KEYS[1]) == ARGV[1] then
    redis.call('PEXPIRE', KEYS[1], string.format('%d', lease))
    return 1
end
return 0
