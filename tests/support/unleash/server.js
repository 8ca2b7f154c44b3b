// The Unleash server of the integration tests (tests/support/unleash_server.py starts it): the
// open-source unleash-server on a free port, over a PostgreSQL the tests start, with one admin
// token and one client token per environment, created at start (Unleash's initApiTokens).
const unleash = require('unleash-server');

const quiet = () => ({
  debug() {}, info() {}, warn() {},
  error(...args) { console.error(...args); },
  fatal(...args) { console.error(...args); },
});

unleash
  .start({
    db: {
      host: process.env.PGHOST, port: Number(process.env.PGPORT), user: 'postgres',
      password: '', database: process.env.PGDATABASE, ssl: false,
    },
    server: { port: Number(process.env.UNLEASH_PORT), host: '127.0.0.1' },
    authentication: {
      initApiTokens: [
        { environment: '*', project: '*', secret: process.env.UNLEASH_ADMIN_TOKEN,
          type: 'admin', tokenName: 'tests-admin' },
        { environment: 'development', project: '*', secret: process.env.UNLEASH_DEV_TOKEN,
          type: 'client', tokenName: 'tests-development' },
        { environment: 'production', project: '*', secret: process.env.UNLEASH_PROD_TOKEN,
          type: 'client', tokenName: 'tests-production' },
      ],
    },
    getLogger: quiet,
  })
  .then(() => console.log('unleash ready'))
  .catch((error) => { console.error(error); process.exit(1); });
