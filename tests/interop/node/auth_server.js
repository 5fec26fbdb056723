// The upnode README's authenticated server: auth(user, pass, cb) hands out an
// object with a beep method only to moo/hax. The beep text uses the epoch so
// the test can compare it exactly.
'use strict';

require('./common').serveUpnode(function (remote, conn) {
    this.auth = function (user, pass, cb) {
        if (user === 'moo' && pass === 'hax') {
            cb(null, {
                beep: function (reply) {
                    reply('boop at ' + new Date(0).toISOString());
                }
            });
        } else {
            cb('ACCESS DENIED');
        }
    };
});
