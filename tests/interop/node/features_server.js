// An upnode server exercising the harder parts of the protocol: functions nested
// in objects in both directions, callbacks called many times, cycles, and the
// `cull` messages dnode sends when its garbage collector frees our callbacks.
'use strict';

require('./common').serveUpnode(function (remote, conn) {
    // opts = { tag: string, reply: function }. Calls opts.reply with an object
    // that carries a fresh function of ours; that function answers through the
    // callback it is given.
    this.nested = function (opts, done) {
        opts.reply({
            tag: opts.tag + '!',
            again: function (word, cb) {
                cb('again ' + word + ' for ' + opts.tag);
            }
        });
        if (typeof done === 'function') done('nested sent');
    };

    // Calls cb(i, n) for i = 0 .. n-1, then done(n).
    this.repeat = function (n, cb, done) {
        for (var i = 0; i < n; i++) cb(i, n);
        done(n);
    };

    // Builds an object that contains itself and passes it to cb.
    this.makeCycle = function (cb) {
        var o = { name: 'loop', depth: 1 };
        o.self = o;
        cb(o);
    };

    // Reports whether the argument arrived as a real cycle, and what it holds.
    this.checkCycle = function (obj, cb) {
        cb({
            isCycle: obj !== null && typeof obj === 'object' && obj.self === obj,
            name: obj && obj.name,
            keys: obj ? Object.keys(obj) : []
        });
    };

    // Sends the argument straight back.
    this.echo = function (value, cb) {
        cb(value);
    };

    // Makes garbage for `rounds` turns of the event loop, so that V8 collects
    // the callback proxies nobody holds any more; dnode then sends `cull` for
    // them. Calls done(rounds) at the end.
    this.churn = function (rounds, done) {
        var left = rounds;
        (function turn() {
            var junk = [];
            for (var i = 0; i < 20000; i++) junk.push({ i: i, s: 'garbage' + i });
            junk = null;
            if (--left > 0) setImmediate(turn);
            else done(rounds);
        })();
    };
});
