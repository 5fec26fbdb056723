// The loopback benchmark's Node client: connects with upnode to an echo
// server (Node or Rust), measures itself, and prints one JSON result line.
//
// Usage: node echo_client.js PORT WARMUP SEQUENTIAL PIPELINED WINDOW OUTSTANDING LONG
//
// 1. warm-up: WARMUP calls one at a time, then WARMUP calls with WINDOW in
//    flight (not measured; lets V8 optimise the hot paths);
// 2. sequential: SEQUENTIAL calls, each sent when the previous one was
//    answered; wall clock around the whole loop, plus each call's latency;
// 3. pipelined: PIPELINED calls with up to WINDOW unanswered at any time;
// 4. outstanding: OUTSTANDING calls, all sent at once;
// 5. long: LONG calls with WINDOW unanswered, timed over the first and the
//    last tenth;
// 6. one last call, which must be the next answer: proves nothing extra came.
//
// A count of 0 leaves its phase out. The result line also carries the
// process's peak resident set (VmHWM) and the CPU time it used (cpu_us, user
// and system, from /proc/self/stat). Every answer is checked: it must be
// exactly {seq, data} as sent, each call answered once. Any mismatch ends the
// process with status 1 and a message on stderr. The harness (bench/src)
// measures its Rust clients the same way.
'use strict';

var net = require('net');
var upnode = require('upnode');
var common = require('./common');

var NAME = 'echo_client';
var n = process.argv.slice(2, 9).map(function (a) { return parseInt(a, 10); });
var port = n[0], warmup = n[1], seqCalls = n[2], calls = n[3], window = n[4];
var outstanding = n[5], longCalls = n[6];
if (n.length !== 7 || !(port > 0) || !(window > 0) ||
    !n.every(function (x) { return x >= 0; })) {
    common.fail(NAME, 'usage: node echo_client.js PORT WARMUP SEQUENTIAL PIPELINED ' +
        'WINDOW OUTSTANDING LONG');
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

// n calls numbered from `first`, keeping up to `win` unanswered.
// done(seconds, [seconds from the start until marks[i] answers had come]).
function pipelined(remote, first, n, win, done, marks) {
    marks = marks || [];
    var at = [];
    var seen = new Uint8Array(n);
    var sent = 0;
    var got = 0;
    var start = now();
    if (n === 0) return done(0, marks.map(function () { return 0; }));
    function onAnswer(answer) {
        var k = answer && typeof answer.seq === 'number' ? answer.seq - first : -1;
        if (!(k >= 0 && k < sent) || seen[k]) {
            common.fail(NAME, 'unexpected answer ' + JSON.stringify(answer));
        }
        check(answer, first + k);
        seen[k] = 1;
        got++;
        while (at.length < marks.length && marks[at.length] <= got) {
            at.push(micros(start, now()) / 1e6);
        }
        if (got === n) return done(micros(start, now()) / 1e6, at);
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

// Runs the steps in order, each step(next) calling next() when done.
function steps(list) {
    (function next(i) { if (i < list.length) list[i](function () { next(i + 1); }); })(0);
}

function run(remote) {
    // Sequence numbers never repeat within a connection: a stray answer from
    // one phase cannot pass for an answer in the next.
    var seq = 0;
    var result = {};
    steps([
        function (next) { sequential(remote, seq, warmup, function () { seq += warmup; next(); }); },
        function (next) {
            pipelined(remote, seq, warmup, window, function () { seq += warmup; next(); });
        },
        function (next) {
            if (seqCalls === 0) return next();
            sequential(remote, seq, seqCalls, function (secs, lat) {
                seq += seqCalls;
                lat.sort(function (a, b) { return a - b; });
                result.sequential = {
                    calls: seqCalls,
                    secs: secs,
                    p50_us: common.percentile(lat, 50),
                    p99_us: common.percentile(lat, 99)
                };
                next();
            });
        },
        function (next) {
            if (calls === 0) return next();
            pipelined(remote, seq, calls, window, function (secs) {
                seq += calls;
                result.pipelined = { calls: calls, window: window, secs: secs };
                next();
            });
        },
        function (next) {
            if (outstanding === 0) return next();
            pipelined(remote, seq, outstanding, outstanding, function (secs) {
                seq += outstanding;
                result.outstanding = { calls: outstanding, window: outstanding, secs: secs };
                next();
            });
        },
        function (next) {
            if (longCalls === 0) return next();
            var tenth = Math.max(Math.floor(longCalls / 10), 1);
            pipelined(remote, seq, longCalls, window, function (secs, at) {
                seq += longCalls;
                result.long = {
                    calls: longCalls,
                    window: window,
                    tenth: tenth,
                    first_tenth_secs: at[0],
                    last_tenth_secs: secs - at[1],
                    secs: secs
                };
                next();
            }, [tenth, longCalls - tenth]);
        },
        function () {
            sequential(remote, seq, 1, function () {
                result.rss_kb = common.peakRssKb();
                result.cpu_us = common.cpuUs();
                process.stdout.write(JSON.stringify(result) + '\n');
                process.exit(0);
            });
        }
    ]);
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
