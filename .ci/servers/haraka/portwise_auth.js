// portwise_auth: auth/flat_file, offering AUTH only once TLS is up.
//
// Haraka's auth/flat_file advertises AUTH in clear to private addresses
// (127.0.0.1 among them), which a provider's submission port must not do;
// auth/auth_base itself requires TLS. This plugin is flat_file (its users
// and methods from config/auth_flat_file.ini) with that check restored.
'use strict'

exports.register = function () {
    this.inherits('auth/flat_file')
    this.load_flat_ini()
}

exports.hook_capabilities = function (next, connection) {
    if (!connection.tls.enabled) return next()
    return this.base['auth/flat_file'].hook_capabilities.call(this, next, connection)
}
