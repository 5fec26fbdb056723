// Shared by the loopback benchmark's Node peers (started by `loopback`, the Rust
// harness in bench/src). Node resolves `upnode` through NODE_PATH, which the
// harness points at tests/interop/node/node_modules.
//
// Every peer leaves through process.exit(): with weak-napi 2.0.2 on Node 20, a
// process that runs out of work while dnode still holds weak references can die
// with SIGSEGV during teardown.
'use strict';

// The payload every call carries next to its sequence number. The harness's
// Rust side uses the same text, so both sides move the same bytes.
exports.DATA = 'upnode loopback echo 0123456789';

// Ends the process when the harness goes away (our stdin closes) or, at the
// latest, after `ms` milliseconds, so a stuck run never outlives its budget.
exports.lifeline = function (name, ms) {
    var timer = setTimeout(function () {
        process.stderr.write(name + ': lifetime of ' + ms + ' ms is over, exiting\n');
        process.exit(3);
    }, ms);
    timer.unref();
    process.stdin.on('end', function () { process.exit(0); });
    process.stdin.on('error', function () { process.exit(0); });
    process.stdin.resume();
};

// Prints why the run is wrong and ends with a failure status.
exports.fail = function (name, why) {
    process.stderr.write(name + ': ' + why + '\n');
    process.exit(1);
};

// The nearest-rank percentile of an ascending array: the smallest value with
// at least p% of the values at or below it. bench/src/stats.rs does the same.
exports.percentile = function (sorted, p) {
    var rank = Math.ceil(p / 100 * sorted.length);
    return sorted[Math.max(rank, 1) - 1];
};

// The CPU time, user and system, the process has used, in µs, from /proc/self/stat
// (fields 14 and 15, in ticks of 10 ms), as the Rust peers read it; null where there is
// no such file.
exports.cpuUs = function () {
    try {
        var stat = require('fs').readFileSync('/proc/self/stat', 'utf8');
        var fields = stat.slice(stat.lastIndexOf(')') + 1).trim().split(/\s+/);
        return (parseInt(fields[11], 10) + parseInt(fields[12], 10)) * 10000;
    } catch (e) {
        return null;
    }
};

// The process's peak resident set (VmHWM from /proc/self/status) in KiB, or
// null where there is no such file.
exports.peakRssKb = function () {
    try {
        var status = require('fs').readFileSync('/proc/self/status', 'utf8');
        var m = /VmHWM:\s*(\d+)/.exec(status);
        return m ? parseInt(m[1], 10) : null;
    } catch (e) {
        return null;
    }
};
