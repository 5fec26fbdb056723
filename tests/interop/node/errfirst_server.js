// An upnode server written the Node way, with error-first callbacks, for our typed client.
// Usage: node errfirst_server.js [PORT]   (prints its port first)
//
//   div(a, b, cb)  cb("division by zero") when b is 0, else cb(null, a / b)
//   user(id, cb)   cb(null, {id, name}) for id 1, else cb({code: 404, message: "no user ID"})
//   hang(cb)       never answers
'use strict';

require('./common').serveUpnode(function (remote, conn) {
    this.div = function (a, b, cb) {
        if (b === 0) return cb('division by zero');
        cb(null, a / b);
    };
    this.user = function (id, cb) {
        if (id === 1) return cb(null, { id: 1, name: 'moo' });
        cb({ code: 404, message: 'no user ' + id });
    };
    this.hang = function (cb) {};
});
