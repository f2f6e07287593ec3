// portwise_store: a Haraka queue plugin for portwise's interop matrix
// (installed into Haraka's plugins directory by .ci/servers/haraka.sh).
//
// It records the envelope as the client sent it (MAIL FROM and RCPT TO
// parameters, from the mail and rcpt hooks) and queues each message into
// the directory named by PORTWISE_HARAKA_STORE: <uuid>.eml is the message
// as Haraka holds it (with the Received and other headers Haraka prepends,
// CRLF, dot-unstuffed), <uuid>.json the envelope.
'use strict'

const fs = require('node:fs')
const path = require('node:path')

exports.register = function () {
    this.store = process.env.PORTWISE_HARAKA_STORE
    fs.mkdirSync(path.join(this.store, 'tmp'), { recursive: true })
    // An authenticated client is relaying, so Haraka runs queue_outbound
    // (its outbound delivery) rather than queue: take both.
    this.register_hook('queue', 'store_message')
    this.register_hook('queue_outbound', 'store_message')
}

exports.hook_mail = function (next, connection, params) {
    connection.transaction.notes.portwise = {
        mail_from: params[0].original,
        mail_params: params[1] || {},
        rcpt: [],
        tls: !!connection.tls.enabled,
        auth_user: connection.notes.auth_user || null,
    }
    next()
}

exports.hook_rcpt = function (next, connection, params) {
    connection.transaction.notes.portwise.rcpt.push({ to: params[0].original, params: params[1] || {} })
    next()
}

exports.store_message = function (next, connection) {
    const txn = connection.transaction
    const id = txn.uuid
    const tmp = path.join(this.store, 'tmp', id)
    fs.writeFileSync(`${tmp}.json`, JSON.stringify(txn.notes.portwise))
    const ws = fs.createWriteStream(`${tmp}.eml`)
    ws.on('error', (err) => next(DENYSOFT, `portwise_store: ${err.message}`))
    ws.on('finish', () => {
        fs.renameSync(`${tmp}.json`, path.join(this.store, `${id}.json`))
        fs.renameSync(`${tmp}.eml`, path.join(this.store, `${id}.eml`))
        next(OK, `queued as ${id}`)
    })
    // dot_stuffing: false is Haraka's form for local delivery: no dot-stuffing.
    txn.message_stream.pipe(ws, { line_endings: '\r\n', dot_stuffing: false })
}
