// A plain dnode 1.2 client written the Node way, with error-first callbacks, for a server
// written in Rust that exports div(a, b) and user(id) (see errfirst_server.js).
// Usage: node errfirst_client.js PORT
// Prints one JSON line per answer, {"call": ..., "err": ..., "result": ...}, then
// {"done": true}, and exits 0; exits non-zero on any failure.
'use strict';

var dnode = require('dnode');
require('./common').lifeline();

var port = parseInt(process.argv[2], 10);
if (!(port > 0)) {
    process.stderr.write('usage: node errfirst_client.js PORT\n');
    process.exit(2);
}

function fail(why) {
    process.stderr.write('errfirst_client: ' + why + '\n');
    process.exit(1);
}

var d = dnode();
d.on('error', function (err) { fail('error: ' + (err && err.stack || err)); });
d.on('fail', function (err) { fail('protocol failure: ' + err); });

d.connect(port, '127.0.0.1', function (remote, conn) {
    var calls = [
        ['div', [6, 3]],
        ['div', [1, 0]],
        ['div', ['six', 3]],
        ['user', [1]],
        ['user', [2]],
    ];
    (function next(i) {
        if (i === calls.length) {
            process.stdout.write(JSON.stringify({ done: true }) + '\n');
            conn.end();
            process.exit(0);
        }
        var name = calls[i][0];
        if (typeof remote[name] !== 'function') fail('remote has no ' + name + '()');
        remote[name].apply(null, calls[i][1].concat([function (err, result) {
            process.stdout.write(JSON.stringify({
                call: name + '(' + calls[i][1].map(String).join(', ') + ')',
                err: err === undefined ? null : err,
                result: result === undefined ? null : result,
            }) + '\n');
            next(i + 1);
        }]));
    })(0);
});
