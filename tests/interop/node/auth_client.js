// The upnode README's authenticated client, pointed at a server the test runs
// (in Rust). Usage: node auth_client.js PORT [EVERY_MS]
//
// On every (re)connection the connect callback logs in with auth('moo', 'hax')
// and hands the session object it gets to up() transactions; it prints
// "authenticated" each time. Every EVERY_MS (default 100) a transaction calls
// the session's beep(cb) and prints the answer. While the link is down the
// transaction is queued and "queued" is printed. Link events are printed as
// "up", "down" and "reconnect"; a refused login goes to stderr.
'use strict';

var upnode = require('upnode');
require('./common').lifeline();

var port = parseInt(process.argv[2], 10);
var every = parseInt(process.argv[3] || '100', 10);
if (!(port > 0) || !(every > 0)) {
    process.stderr.write('usage: node auth_client.js PORT [EVERY_MS]\n');
    process.exit(2);
}

var up = upnode.connect(port, '127.0.0.1', { reconnect: 50 }, function (remote, conn) {
    remote.auth('moo', 'hax', function (err, session) {
        if (err) {
            process.stderr.write('auth_client: ' + err + '\n');
            return;
        }
        console.log('authenticated');
        conn.emit('up', session);
    });
});
up.on('up', function () { console.log('up'); });
up.on('down', function () { console.log('down'); });
up.on('reconnect', function () { console.log('reconnect'); });
up.on('error', function (err) { process.stderr.write('auth_client: ' + err + '\n'); });

setInterval(function () {
    if (!up.remote) console.log('queued');
    up(function (session) {
        session.beep(function (s) {
            console.log(s);
        });
    });
}, every);
