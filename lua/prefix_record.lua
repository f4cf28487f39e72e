--[[
prefix_record.lua: record that a backend now holds a prompt's blocks.

Each block key is a sorted set (member = backend, score = time in ms of
the last record).  The record refreshes the key's TTL and keeps at most
`cap` backends per block, dropping the least recently recorded.

KEYS[1..n]  the prompt's chained block keys
ARGV[1]     backend name (not empty)
ARGV[2]     ttl_ms (> 0)
ARGV[3]     cap: backends kept per block (0: no cap)
ARGV[4]     now_ms (optional; "" or 0: the server's clock)

Returns the number of blocks recorded.
Errors: "ERR prefix_record: ..." on a bad argument.
]]

if redis.replicate_commands then
    -- Redis < 7 needs this before a write that follows TIME.
    redis.replicate_commands()
end

local backend = ARGV[1]
local ttl = tonumber(ARGV[2])
local cap = tonumber(ARGV[3]) or 0
local now = tonumber(ARGV[4]) or 0

if backend == nil or backend == '' then
    return redis.error_reply('ERR prefix_record: empty backend')
end
if ttl == nil or ttl <= 0 then
    return redis.error_reply('ERR prefix_record: bad ttl_ms')
end
if now <= 0 then
    local t = redis.call('TIME')
    now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local score = string.format('%d', now)
local ttlarg = string.format('%d', ttl)
for _, key in ipairs(KEYS) do
    redis.call('ZADD', key, score, backend)
    if cap > 0 then
        redis.call('ZREMRANGEBYRANK', key, 0, -(cap + 1))
    end
    redis.call('PEXPIRE', key, ttlarg)
end
return #KEYS
