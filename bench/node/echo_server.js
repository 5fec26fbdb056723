// The loopback benchmark's Node server: an upnode interface exporting
// echo(x, cb), which answers cb(x) with the value it was given.
//
// Usage: node echo_server.js [PORT [stamp]]
// Binds 127.0.0.1 on PORT (default 0: a port the system picks) and prints the
// port as its first stdout line once listening; with `stamp`, then the wall
// clock in µs since the Unix epoch at which listening began (for the flush
// phase). Runs until its stdin closes (at most five minutes).
//
// upnode 0.6's listen() cannot bind port 0 (it takes 0 for "no port"), so each
// accepted socket is piped through its own upnode(cons) handle instead; that
// is the stream form upnode offers for any transport.
'use strict';

var net = require('net');
var upnode = require('upnode');
var common = require('./common');

common.lifeline('echo_server', 30 * 60 * 1000);

function cons(remote, conn) {
    this.echo = function (x, cb) {
        cb(x);
    };
}

var server = net.createServer(function (socket) {
    // The Rust peers turn Nagle's algorithm off; do the same here so that
    // every pairing runs with the same socket options.
    socket.setNoDelay(true);
    socket.on('error', function () {}); // a client hanging up is not our error
    var handle = upnode(cons);
    socket.pipe(handle).pipe(socket);
});
var port = process.argv[2] === undefined ? 0 : parseInt(process.argv[2], 10);
if (!(port >= 0 && port < 65536)) common.fail('echo_server', 'usage: node echo_server.js [PORT]');
server.listen(port, '127.0.0.1', function () {
    var listening = (performance.timeOrigin + performance.now()) * 1e3;
    process.stdout.write(server.address().port + '\n');
    if (process.argv[3] === 'stamp') process.stdout.write(listening + '\n');
});
