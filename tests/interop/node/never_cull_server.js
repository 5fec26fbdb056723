// A dnode 1.2 server that never culls, as every dnode peer on a Node without a working
// `weak` module behaves: `time(cb)` answers with a number, `ping(cb)` as upnode's does.
// Usage: node never_cull_server.js   (prints its port first)
'use strict';

var dnode = require('dnode');
var net = require('net');
require('./common').lifeline();

var n = 0;
var server = net.createServer(function (socket) {
    socket.on('error', function () {});
    var d = dnode({
        time: function (cb) { cb(n++); },
        ping: function (cb) { if (typeof cb === 'function') cb(); }
    }, { weak: false });
    socket.pipe(d).pipe(socket);
});
server.listen(0, '127.0.0.1', function () {
    process.stdout.write(server.address().port + '\n');
});
