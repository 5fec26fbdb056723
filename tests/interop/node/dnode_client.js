// A plain dnode 1.2 client (no upnode) for a server written in Rust.
// Usage: node dnode_client.js PORT
// Calls time(cb), add(2, 3, cb) and add(40, 2, cb), reads the data member beep,
// prints one JSON object per line on stdout and exits 0; exits non-zero on any
// failure.
'use strict';

var dnode = require('dnode');
require('./common').lifeline();

var port = parseInt(process.argv[2], 10);
if (!(port > 0)) {
    process.stderr.write('usage: node dnode_client.js PORT\n');
    process.exit(2);
}

function emit(obj) {
    process.stdout.write(JSON.stringify(obj) + '\n');
}

function fail(why) {
    process.stderr.write('dnode_client: ' + why + '\n');
    process.exit(1);
}

var d = dnode();
d.on('error', function (err) { fail('error: ' + (err && err.stack || err)); });
d.on('fail', function (err) { fail('protocol failure: ' + err); });

d.connect(port, '127.0.0.1', function (remote, conn) {
    emit({ methods: Object.keys(remote), beep: remote.beep });
    if (typeof remote.time !== 'function') fail('remote has no time()');
    if (typeof remote.add !== 'function') fail('remote has no add()');

    remote.time(function (t) {
        emit({ time: t });
        remote.add(2, 3, function (sum) {
            emit({ add: [2, 3, sum] });
            remote.add(40, 2, function (sum2) {
                emit({ add: [40, 2, sum2] });
                emit({ done: true });
                conn.end();
                process.exit(0);
            });
        });
    });
});
