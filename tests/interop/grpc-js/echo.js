// Loads hive.v1.Echo from the repository's proto, shared by client.js and server.js.
'use strict';
const path = require('path');
const grpc = require('@grpc/grpc-js');
const loader = require('@grpc/proto-loader');

const protos = path.resolve(__dirname, '..', '..', '..', 'Protos');
const definition = loader.loadSync('hive/v1/test.proto', { includeDirs: [protos], keepCase: false, defaults: true });
module.exports = { grpc, Echo: grpc.loadPackageDefinition(definition).hive.v1.Echo };
