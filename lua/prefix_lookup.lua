--[[
prefix_lookup.lua: which backends hold the longest leading run of a
prompt's blocks, in one round trip.

A block key is a sorted set: member = backend name, score = the time (ms)
the backend was last recorded on that block (see prefix_record.lua).

KEYS[1..n]  the prompt's chained block keys, in prompt order
ARGV[1]     now_ms      (optional; "" or 0: no age filter)
ARGV[2]     max_age_ms  (optional; with now_ms, records older than
                         now_ms - max_age_ms do not count)

Returns a flat array {backend, nblocks, backend, nblocks, ...}: every
backend recorded on KEYS[1], most recent first, with the number of
leading blocks (KEYS[1..nblocks]) it holds without a gap.  Empty when no
backend holds KEYS[1].  Read-only.
]]

if #KEYS == 0 then
    return {}
end

local now = tonumber(ARGV[1]) or 0
local maxage = tonumber(ARGV[2]) or 0
local min = nil
if now > 0 and maxage > 0 then
    min = now - maxage
end

local holders
if min then
    holders = redis.call('ZREVRANGEBYSCORE', KEYS[1], '+inf',
                         string.format('%d', min))
else
    holders = redis.call('ZREVRANGE', KEYS[1], 0, -1)
end
if #holders == 0 then
    return {}
end

-- Walk the blocks once, asking only the backends still on a run.
local runs = {}
local active = {}
for i = 1, #holders do
    runs[i] = 1
    active[i] = i
end
local k = 2
while #active > 0 and k <= #KEYS do
    local still = {}
    for _, i in ipairs(active) do
        local score = redis.call('ZSCORE', KEYS[k], holders[i])
        if score and (min == nil or tonumber(score) >= min) then
            runs[i] = k
            still[#still + 1] = i
        end
    end
    active = still
    k = k + 1
end

local out = {}
for i = 1, #holders do
    out[#out + 1] = holders[i]
    out[#out + 1] = runs[i]
end
return out
