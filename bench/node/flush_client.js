// The loopback benchmark's Node flush client: queues N upnode transactions
// while nothing listens on PORT (reconnecting every 5 ms), each making one
// echo call, then waits for every answer.
//
// Usage: node flush_client.js PORT N
//
// Prints `queued` once the N transactions wait (the harness then starts the
// server), and, when the last answer has come, one JSON line:
// {"done_unix_us": wall clock in µs, "rss_kb": peak resident set}. Every
// answer is checked as in echo_client.js.
'use strict';

var net = require('net');
var upnode = require('upnode');
var common = require('./common');

var NAME = 'flush_client';
var port = parseInt(process.argv[2], 10);
var n = parseInt(process.argv[3], 10);
if (!(port > 0) || !(n > 0)) common.fail(NAME, 'usage: node flush_client.js PORT N');
common.lifeline(NAME, 10 * 60 * 1000);

var up = upnode.connect({
    port: port,
    host: '127.0.0.1',
    reconnect: 5,
    createStream: function () {
        var s = net.connect(port, '127.0.0.1');
        s.setNoDelay(true);
        return s;
    }
});
// Refused connections are expected until the server listens; upnode retries.
up.on('error', function () {});
up.on('down', function () { common.fail(NAME, 'the link went down during the flush'); });

var seen = new Uint8Array(n);
var got = 0;

function onAnswer(i, m) {
    var keys = m && typeof m === 'object' ? Object.keys(m) : [];
    if (keys.length !== 2 || m.seq !== i || m.data !== common.DATA) {
        common.fail(NAME, 'queued call ' + i + ' answered with ' + JSON.stringify(m));
    }
    if (seen[i]) common.fail(NAME, 'queued call ' + i + ' answered twice');
    seen[i] = 1;
    got++;
    if (got === n) {
        var doneUs = (performance.timeOrigin + performance.now()) * 1e3;
        process.stdout.write(JSON.stringify({
            done_unix_us: doneUs,
            rss_kb: common.peakRssKb()
        }) + '\n');
        process.exit(0);
    }
}

for (var i = 0; i < n; i++) {
    (function (i) {
        up(function (remote) {
            remote.echo({ seq: i, data: common.DATA }, function (m) { onAnswer(i, m); });
        });
    })(i);
}
process.stdout.write('queued\n');
