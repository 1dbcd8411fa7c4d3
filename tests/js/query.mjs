// One query through the official ClickHouse JS client, a reader tally did not write: the server,
// user, password and database come from the environment (never the command line, which others on
// the machine can read), the statement on stdin; the rows go to stdout as one JSON array.
import { createClient } from '@clickhouse/client'

let query = ''
for await (const chunk of process.stdin) query += chunk
const client = createClient({
  url: process.env.CLICKHOUSE_URL,
  username: process.env.CLICKHOUSE_USER,
  password: process.env.CLICKHOUSE_PASSWORD,
  database: process.env.CLICKHOUSE_DATABASE,
})
try {
  const result = await client.query({ query, format: 'JSONEachRow' })
  process.stdout.write(JSON.stringify(await result.json()))
} finally {
  await client.close()
}
