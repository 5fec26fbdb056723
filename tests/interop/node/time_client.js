// The upnode README's client, pointed at a server the test runs (in Rust).
// Usage: node time_client.js PORT [EVERY_MS]
//
// Every EVERY_MS (default 100) it runs one transaction through up(): when the
// link is up, call time(cb) and print "time = <answer>". While the link is down
// upnode queues the transaction; we print "queued" for each one so the test can
// check that every queued call is answered after the server comes back.
// Link events are printed as "up", "down" and "reconnect".
'use strict';

var upnode = require('upnode');
require('./common').lifeline();

var port = parseInt(process.argv[2], 10);
var every = parseInt(process.argv[3] || '100', 10);
if (!(port > 0) || !(every > 0)) {
    process.stderr.write('usage: node time_client.js PORT [EVERY_MS]\n');
    process.exit(2);
}

// A short reconnect delay keeps the test quick; the rest are upnode's defaults.
var up = upnode.connect(port, '127.0.0.1', { reconnect: 50 });
up.on('up', function () { console.log('up'); });
up.on('down', function () { console.log('down'); });
up.on('reconnect', function () { console.log('reconnect'); });
up.on('error', function (err) { process.stderr.write('time_client: ' + err + '\n'); });

setInterval(function () {
    if (!up.remote) console.log('queued');
    up(function (remote) {
        remote.time(function (t) {
            console.log('time = ' + t);
        });
    });
}, every);
