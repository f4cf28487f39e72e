--[[
session_unlock.lua: release a session's lock taken by session_get.lua
when the request ends without appending (failed, cancelled).  Only the
holder's token releases it.

KEYS[1]  lock key (see session_get.lua)
ARGV[1]  token of the request that took the lock

Returns 1 when the lock was released, 0 when the token did not hold it.
]]

if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
