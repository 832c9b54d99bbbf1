#!/usr/bin/env node
// Drives the unmodified npm package domo-sdk@2.0.1 through a whole Stream API flow against a Datagrove server.
//
// Environment:
//   DG_HOST           host:port of the server, e.g. 127.0.0.1:8000 (plain HTTP)
//   DG_CLIENT_ID      OAuth client id     (the SDK fetches its token with GET /oauth/token?scope=user%20data&...)
//   DG_CLIENT_SECRET  OAuth client secret
//   DG_STREAM_NAME    optional dataset name (default: "node sdk <timestamp>")
//
// Prints one JSON line with what the SDK returned and exits 0; on any error prints it to stderr and exits 1.
'use strict';

const zlib = require('zlib');
const { DomoClient } = require('domo-sdk');
const { API_SCOPE } = require('domo-sdk/dist/common/Constants');

// The two parts: part 1 is sent as plain text/csv, part 2 gzip-compressed as application/gzip.
const PLAIN_PART = 'Pythagoras,70\nTuring,41\n"Noether, Emmy",53\n';
const GZIP_PART = 'Euler,76\nGauss,77\n';

function required(name) {
  const value = process.env[name];
  if (!value) throw new Error(`environment variable ${name} is not set`);
  return value;
}

// uploadPart / uploadCompressedPart run with json=false, so the SDK hands back the raw body string.
function parseMaybe(body) {
  if (typeof body !== 'string') return body;
  try {
    return JSON.parse(body);
  } catch (e) {
    return body;
  }
}

async function main() {
  const host = required('DG_HOST');
  const clientId = required('DG_CLIENT_ID');
  const clientSecret = required('DG_CLIENT_SECRET');
  const name = process.env.DG_STREAM_NAME || `node sdk ${Date.now()}`;

  const domo = new DomoClient(clientId, clientSecret, [API_SCOPE.USER, API_SCOPE.DATA], host);
  // Transport hard-codes `https://${host}`; overwriting the public apiHost is the only way to use plain HTTP.
  domo.transport.apiHost = `http://${host}`;

  const stream = await domo.streams.create({
    dataSet: {
      name,
      description: 'created by domo-sdk (Node)',
      schema: {
        columns: [
          { type: 'STRING', name: 'Friend' },
          { type: 'LONG', name: 'Age' },
        ],
      },
    },
    updateMethod: 'APPEND',
  });
  const streamId = stream.id;
  const datasetId = stream.dataSet && stream.dataSet.id;
  if (streamId === undefined || !datasetId) {
    throw new Error(`stream create answered without id or dataSet.id: ${JSON.stringify(stream)}`);
  }

  const execution = await domo.streams.createExecution(streamId);
  const plainAnswer = parseMaybe(await domo.streams.uploadPart(streamId, execution.id, 1, PLAIN_PART));
  const gzipAnswer = parseMaybe(
    await domo.streams.uploadCompressedPart(streamId, execution.id, 2, zlib.gzipSync(Buffer.from(GZIP_PART, 'utf8'))),
  );
  const committed = await domo.streams.commit(streamId, execution.id);
  const fetchedExecution = await domo.streams.getExecution(streamId, execution.id);
  const fetchedStream = await domo.streams.get(streamId);
  const executions = await domo.streams.listExecutions(streamId, 50, 0);
  const dataset = await domo.datasets.get(datasetId);
  const exported = await domo.datasets.exportData(datasetId);
  const exportedWithHeader = await domo.datasets.exportData(datasetId, true);

  const result = {
    streamId,
    datasetId,
    streamName: name,
    createdStream: stream,
    createdExecution: execution,
    plainPartAnswer: plainAnswer,
    gzipPartAnswer: gzipAnswer,
    committed,
    executionStateAfterCommit: committed && committed.currentState,
    fetchedExecution,
    fetchedStream,
    executions,
    dataset,
    exportedCsv: exported,
    exportedCsvWithHeader: exportedWithHeader,
    plainPart: PLAIN_PART,
    gzipPart: GZIP_PART,
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

main().then(
  () => process.exit(0),
  (err) => {
    // RequestException wraps request-promise's StatusCodeError / RequestError in `err.error`.
    const cause = err && err.error;
    const detail = {
      message: err && err.message,
      method: err && err.method,
      path: err && err.path,
      statusCode: cause && cause.statusCode,
      responseBody: cause && cause.error,
      cause: cause && cause.message,
      stack: err && err.stack,
    };
    process.stderr.write(`${JSON.stringify(detail, null, 2)}\n`);
    process.exit(1);
  },
);
