// Shared plumbing for the interop peers started by the Rust tests.
//
// Every script started by a test must go away on its own: when the test process
// dies (our stdin pipe closes) or, at the latest, after a fixed safety period.
//
// Always leave through process.exit(): with weak-napi 2.0.2 on Node 20, a
// process that ends by running out of work while dnode still holds weak
// references to unreachable callbacks dies with SIGSEGV during teardown.
'use strict';

var net = require('net');
var upnode = require('upnode');

// A test that runs longer sets UPNODE_INTEROP_SAFETY_MS.
var SAFETY_MS = parseInt(process.env.UPNODE_INTEROP_SAFETY_MS || '', 10) || 30 * 1000;

// Exit when the parent goes away or when the safety period is over.
exports.lifeline = function () {
    var timer = setTimeout(function () {
        process.stderr.write('interop peer: safety timeout, exiting\n');
        process.exit(3);
    }, SAFETY_MS);
    timer.unref(); // never the reason the process stays alive

    if (!process.stdin.isTTY) {
        process.stdin.on('end', function () { process.exit(0); });
        process.stdin.on('error', function () { process.exit(0); });
        process.stdin.resume();
    }
};

// Serve an upnode interface on 127.0.0.1. The port is argv[2], or 0 for any free
// port; the bound port is printed as the first stdout line.
//
// upnode's own listen() treats port 0 as "no port given", so each accepted socket
// is piped through a fresh upnode(cons) handle instead, which is the stream form
// upnode documents for custom transports.
exports.serveUpnode = function (cons) {
    exports.lifeline();
    var port = parseInt(process.argv[2] || '0', 10);
    var server = net.createServer(function (socket) {
        socket.on('error', function () {}); // a test dropping its socket is fine
        var handle = upnode(cons);
        socket.pipe(handle).pipe(socket);
    });
    server.listen(port, '127.0.0.1', function () {
        process.stdout.write(server.address().port + '\n');
    });
    return server;
};
