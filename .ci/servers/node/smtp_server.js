// A submission server built on Nodemailer's smtp-server, for portwise's
// interop matrix; started by .ci/servers/smtp-server.sh.
//
// Two listeners: STARTTLS and implicit TLS (secure: true). AUTH PLAIN and
// LOGIN are refused before TLS (allowInsecureAuth: false), though
// smtp-server still advertises AUTH in the EHLO reply before STARTTLS.
// Each message is stored byte for byte as received in DATA (dot-unstuffed,
// CRLF, nothing added) in STORE/<n>.eml, its envelope in STORE/<n>.json.
// smtp-server's own protocol log ("C: AUTH PLAIN /* secured */", ...) goes
// to LOG.
'use strict';

const fs = require('fs');
const path = require('path');
const util = require('util');
const { SMTPServer } = require('smtp-server');

const env = name => {
    const v = process.env[name];
    if (!v) throw new Error(`${name} is not set`);
    return v;
};
const host = env('SMTPSERVER_HOST');
const store = env('SMTPSERVER_STORE');
const user = env('SMTPSERVER_USER');
const pass = fs.readFileSync(env('SMTPSERVER_PASSWORD_FILE'), 'utf8').trim();
const logStream = fs.createWriteStream(env('SMTPSERVER_LOG'), { flags: 'a' });

const write = level => (meta, ...args) => {
    const line = typeof meta === 'string' ? util.format(meta, ...args) : util.format(...args);
    logStream.write(`${new Date().toISOString()} ${level} ${(meta && meta.cid) || '-'} ${line}\n`);
};
const logger = { trace: write('trace'), debug: write('debug'), info: write('info'), warn: write('warn'), error: write('error'), fatal: write('fatal') };
logger.child = () => logger;

let seq = 0;
fs.mkdirSync(path.join(store, 'tmp'), { recursive: true });

const common = {
    key: fs.readFileSync(env('SMTPSERVER_KEY')),
    cert: fs.readFileSync(env('SMTPSERVER_CERT')),
    name: 'localhost',
    banner: 'portwise-ci smtp-server',
    authMethods: ['PLAIN', 'LOGIN'],
    allowInsecureAuth: false,
    // DSN and REQUIRETLS are off unless asked for.
    hideDSN: false,
    hideREQUIRETLS: false,
    authOptional: false,
    size: 50 * 1024 * 1024,
    logger,
    onAuth(auth, session, cb) {
        const ok = auth.username === user && auth.password === pass;
        logger.info({ cid: session.id }, 'auth %s for %j: %s', auth.method, auth.username, ok ? 'ok' : 'failed');
        if (!ok) return cb(new Error('Invalid username or password'));
        cb(null, { user: auth.username });
    },
    onData(stream, session, cb) {
        const chunks = [];
        stream.on('data', c => chunks.push(c));
        stream.on('end', () => {
            const n = `${process.pid}-${String(++seq).padStart(6, '0')}`;
            const tmp = path.join(store, 'tmp', n);
            fs.writeFileSync(tmp + '.json', JSON.stringify({ envelope: session.envelope, secure: session.secure, user: session.user }));
            fs.writeFileSync(tmp + '.eml', Buffer.concat(chunks));
            fs.renameSync(tmp + '.json', path.join(store, n + '.json'));
            fs.renameSync(tmp + '.eml', path.join(store, n + '.eml'));
            cb(null, `Ok: queued as ${n}`);
        });
    },
};

const servers = [
    new SMTPServer({ ...common, secure: false }),
    new SMTPServer({ ...common, secure: true }),
];
const ports = [Number(env('SMTPSERVER_STARTTLS_PORT')), Number(env('SMTPSERVER_IMPLICIT_PORT'))];
servers.forEach((s, i) => {
    s.on('error', err => logger.error({}, 'server error: %s', err.stack || err));
    s.listen(ports[i], host);
});
const stop = () => {
    servers.forEach(s => s.close());
    setTimeout(() => process.exit(0), 500).unref();
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
