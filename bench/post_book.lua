-- wrk: POST /book with a valid booking (the original design's example body).
wrk.method = "POST"
wrk.body = '{"patientName":"Juan Pérez","patientEmail":"juan@example.com","date":"2030-06-17T08:00:00Z"}'
wrk.headers["Content-Type"] = "application/json"
