-- wrk script: POST order bodies as Vendasta sends them, a fresh order id per request
-- (so every request is a new delivery, not a resend), with the verifier token.
-- Usage: wrk ... -s post_unique.lua URL -- RUN_PREFIX
local prefix = "R"
local counter = 0

function init(args)
  if args[1] then prefix = args[1] end
end

function request()
  counter = counter + 1
  local order = string.format("AG-7PQTGLLXQQ:ORD-%s%09d", prefix, counter)
  local body = '{"accountId":"AG-7PQTGLLXQQ",'
    .. '"automationId":"Automation-7a416085-5668-467c-98ad-f903ad1c4187",'
    .. '"entityId":"' .. order .. '","marketId":"default",'
    .. '"orderId":"' .. order .. '","partnerId":"9YW9"}'
  return wrk.format("POST", "/hooks/vendasta",
    {["Content-Type"] = "application/json", ["Verifier-Token"] = "bench-token"}, body)
end
