// nodemailer.mjs: the Nodemailer client of bench/realserver. For each
// number on its stdin it sends that many messages through Nodemailer's
// SMTP pool (pool: true) with --conns connections and as many senders,
// each sending its next message as soon as its last was accepted, as the
// Go clients do, and prints what they print: {"sent", "seconds", "cpu"}
// for the window from its first message to the last accepted. The pool
// and its connections stay up from one number to the next (so does V8's
// JIT); at the end of stdin it closes them. The message is the harness's
// file, sent as it is (raw), so that every client sends the same bytes;
// the pool keeps its defaults otherwise (a connection is replaced after
// 100 messages).
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import nodemailer from 'nodemailer';

const { values: a } = parseArgs({
    options: {
        addr: { type: 'string' },
        conns: { type: 'string' },
        from: { type: 'string' },
        to: { type: 'string' },
        msg: { type: 'string' }
    }
});
const at = a.addr.lastIndexOf(':');
const host = a.addr.slice(0, at);
const port = Number(a.addr.slice(at + 1));
const conns = Number(a.conns);
const raw = readFileSync(a.msg);

const transport = nodemailer.createTransport({
    pool: true,
    host,
    port,
    secure: false,
    ignoreTLS: true, // the benchmark's port is plain, as smtp-source needs
    maxConnections: conns,
    name: 'localhost'
});

async function sendN(n) {
    let taken = 0;
    async function sender() {
        while (taken < n) {
            taken++;
            await transport.sendMail({ envelope: { from: a.from, to: [a.to] }, raw });
        }
    }
    const cpu0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    await Promise.all(Array.from({ length: conns }, sender));
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    const cpu = process.cpuUsage(cpu0);
    return { sent: n, seconds, cpu: (cpu.user + cpu.system) / 1e6 };
}

try {
    for await (const line of createInterface({ input: process.stdin })) {
        console.log(JSON.stringify(await sendN(Number(line))));
    }
} catch (err) {
    console.error(err.message);
    process.exit(1);
}
transport.close();
