// The loopback benchmark's Node client: connects with upnode to an echo
// server (Node or Rust), measures itself, and prints one JSON result line.
//
// Usage: node echo_client.js PORT CALLS WINDOW WARMUP [SEQUENTIAL]
//
// SEQUENTIAL (default CALLS) is how many calls the sequential loop makes.
//
// 1. warm-up: WARMUP calls one at a time, then WARMUP calls with WINDOW in
//    flight (not measured; lets V8 optimise the hot paths);
// 2. sequential: CALLS calls, each sent when the previous one was answered;
//    wall clock around the whole loop, plus each call's latency;
// 3. pipelined: CALLS calls with up to WINDOW unanswered at any time; wall
//    clock around the whole loop;
// 4. one last call, which must be the next answer: proves nothing extra came.
//
// Every answer is checked: it must be exactly {seq, data} as sent, each call
// answered once. Any mismatch ends the process with status 1 and a message on
// stderr. The harness (bench/src) measures its Rust clients the same way.
'use strict';

var net = require('net');
var upnode = require('upnode');
var common = require('./common');

var NAME = 'echo_client';
var port = parseInt(process.argv[2], 10);
var calls = parseInt(process.argv[3], 10);
var window = parseInt(process.argv[4], 10);
var warmup = parseInt(process.argv[5], 10);
var seqCalls = process.argv[6] === undefined ? calls : parseInt(process.argv[6], 10);
if (!(port > 0) || !(calls > 0) || !(window > 0) || !(warmup >= 0) || !(seqCalls >= 0)) {
    common.fail(NAME, 'usage: node echo_client.js PORT CALLS WINDOW WARMUP');
}
common.lifeline(NAME, 10 * 60 * 1000);

function now() { return process.hrtime.bigint(); }
function micros(t0, t1) { return Number(t1 - t0) / 1e3; }

function message(seq) { return { seq: seq, data: common.DATA }; }

// Fails the run unless `got` is exactly the message with number `seq`.
function check(got, seq) {
    var keys = got && typeof got === 'object' ? Object.keys(got) : [];
    if (keys.length !== 2 || got.seq !== seq || got.data !== common.DATA) {
        common.fail(NAME, 'call ' + seq + ' answered with ' + JSON.stringify(got));
    }
}

// Calls echo once; `cb(answer)` runs for the first answer, a second one fails.
function echo(remote, seq, cb) {
    var answered = false;
    remote.echo(message(seq), function (got) {
        if (answered) common.fail(NAME, 'call ' + seq + ' answered twice');
        answered = true;
        cb(got);
    });
}

// n calls one after the other, numbered from `first`.
// done(seconds, latencies in µs).
function sequential(remote, first, n, done) {
    var lat = new Array(n);
    var i = 0;
    var start = now();
    (function next() {
        if (i === n) return done(micros(start, now()) / 1e6, lat);
        var t0 = now();
        echo(remote, first + i, function (got) {
            lat[i] = micros(t0, now());
            check(got, first + i);
            i++;
            next();
        });
    })();
}

// n calls numbered from `first`, keeping up to `win` unanswered. done(seconds).
function pipelined(remote, first, n, win, done) {
    var seen = new Uint8Array(n);
    var sent = 0;
    var got = 0;
    var start = now();
    function onAnswer(answer) {
        var k = answer && typeof answer.seq === 'number' ? answer.seq - first : -1;
        if (!(k >= 0 && k < sent) || seen[k]) {
            common.fail(NAME, 'unexpected answer ' + JSON.stringify(answer));
        }
        check(answer, first + k);
        seen[k] = 1;
        got++;
        if (got === n) return done(micros(start, now()) / 1e6);
        fill();
    }
    function fill() {
        while (sent < n && sent - got < win) {
            echo(remote, first + sent, onAnswer);
            sent++;
        }
    }
    fill();
}

function run(remote) {
    // Sequence numbers never repeat within a connection: a stray answer from
    // one phase cannot pass for an answer in the next.
    var seq = 0;
    sequential(remote, seq, warmup, function () {
        seq += warmup;
        pipelined(remote, seq, warmup, window, function () {
            seq += warmup;
            sequential(remote, seq, seqCalls, function (seqSecs, lat) {
                seq += seqCalls;
                lat.sort(function (a, b) { return a - b; });
                pipelined(remote, seq, calls, window, function (pipeSecs) {
                    seq += calls;
                    sequential(remote, seq, 1, function () {
                        process.stdout.write(JSON.stringify({
                            sequential: {
                                calls: seqCalls,
                                secs: seqSecs,
                                p50_us: common.percentile(lat, 50),
                                p99_us: common.percentile(lat, 99)
                            },
                            pipelined: { calls: calls, window: window, secs: pipeSecs }
                        }) + '\n');
                        process.exit(0);
                    });
                });
            });
        });
    });
}

var up = upnode.connect({
    port: port,
    host: '127.0.0.1',
    // upnode's documented hook for the transport; used only to turn Nagle's
    // algorithm off, as the Rust peers do.
    createStream: function () {
        var s = net.connect(port, '127.0.0.1');
        s.setNoDelay(true);
        return s;
    }
});
up.on('error', function (err) { common.fail(NAME, String(err)); });
up.on('down', function () { common.fail(NAME, 'the link went down during the run'); });
up(run);
