// Why Node dnode clients slow down as a connection ages (see README, Performance).
//
// dnode 1.2's scrubber (in dnode-protocol 0.2) finds the id of every function it sends with
// Array#indexOf over the list of all callbacks sent on that connection so far,
// so each call costs time in proportion to the calls before it. A `cull` from
// the peer deletes that callback's entry, leaving a hole, and indexOf over an
// array with holes is much slower still. This mimics both, without dnode:
//
//   node bench/node/scrub_lookup.js
'use strict';

function trial(n, culled) {
    var sent = [];
    var t0 = process.hrtime.bigint();
    for (var i = 0; i < n; i++) {
        var cb = function () {};
        sent.indexOf(cb); // the scrubber's look-up: a fresh callback is never found
        sent.push(cb);
        if (culled) delete sent[i]; // the peer culls it once it has answered
    }
    return Number(process.hrtime.bigint() - t0) / 1e6;
}

[5000, 10000, 20000].forEach(function (n) {
    console.log(n + ' callbacks: ' + trial(n, false).toFixed(1) + ' ms without culls, ' +
        trial(n, true).toFixed(1) + ' ms when each is culled');
});
process.exit(0);
