// A Node upnode client making many calls on one connection, WINDOW at a time:
// echo(i, cb) must answer cb(i), each exactly once. Prints "up", then
// "done N MS" (calls, milliseconds) and stays connected until stdin closes, so the
// test can read the server's counters while the connection is idle.
// Usage: node many_calls_client.js PORT N WINDOW
'use strict';

var upnode = require('upnode');
require('./common').lifeline();

var port = parseInt(process.argv[2], 10);
var total = parseInt(process.argv[3], 10);
var windowSize = parseInt(process.argv[4], 10);
if (!(port > 0) || !(total > 0) || !(windowSize > 0)) {
    process.stderr.write('usage: node many_calls_client.js PORT N WINDOW\n');
    process.exit(2);
}

function fail(why) {
    process.stderr.write('many_calls_client: ' + why + '\n');
    process.exit(1);
}

var up = upnode.connect(port, '127.0.0.1', { reconnect: 50 });
up.on('down', function () { fail('the link went down'); });
up.on('error', function (err) { fail('error: ' + err); });
up(function (remote) {
    console.log('up');
    var sent = 0, answered = 0, started = Date.now();
    var seen = new Uint8Array(total);
    function next() {
        var i = sent++;
        remote.echo(i, function (x) {
            if (x !== i) fail('call ' + i + ' answered ' + JSON.stringify(x));
            if (seen[i]) fail('call ' + i + ' answered twice');
            seen[i] = 1;
            answered++;
            if (sent < total) next();
            else if (answered === total) {
                console.log('done ' + total + ' ' + (Date.now() - started));
            }
        });
    }
    for (var k = 0; k < windowSize && sent < total; k++) next();
});
