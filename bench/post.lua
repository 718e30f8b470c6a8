-- wrk script: POST the sample order body with the verifier token, as Vendasta does.
wrk.method = "POST"
wrk.path = "/hooks/vendasta"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Verifier-Token"] = "bench-token"
wrk.body = '{"accountId":"AG-7PQTGLLXQQ","automationId":"Automation-7a416085-5668-467c-98ad-f903ad1c4187","entityId":"AG-7PQTGLLXQQ:ORD-S548DKHMKX","marketId":"default","orderId":"AG-7PQTGLLXQQ:ORD-S548DKHMKX","partnerId":"9YW9"}'
