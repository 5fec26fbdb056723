// The upnode README's simplest server: exports time(cb), answering with the
// server's clock as Date#toString() formats it.
'use strict';

require('./common').serveUpnode(function (remote, conn) {
    this.time = function (cb) {
        cb(new Date().toString());
    };
});
