// The stock Scaleway JavaScript SDK (@scaleway/sdk-iot's Iotv1.API over @scaleway/sdk-client),
// used exactly as a Scaleway customer would, against our REST API. run.sh starts the broker and
// passes TWINS_REST_URL, TWINS_REST_TOKEN (a UUID, as the SDK insists) and TWINS_MAX_DOCUMENTS.
//
// Every happy path has an invalid-input twin asserting the SDK's own typed error (the class
// the SDK picks from the JSON body's `type`, with the fields it parsed out of the body).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';

import { createClient, Errors } from '@scaleway/sdk-client';
import { Iotv1 } from '@scaleway/sdk-iot';

const apiURL = process.env.TWINS_REST_URL;
const secretKey = process.env.TWINS_REST_TOKEN;
const maxDocuments = Number(process.env.TWINS_MAX_DOCUMENTS);
if (!apiURL || !secretKey || !Number.isInteger(maxDocuments)) {
  throw new Error('set TWINS_REST_URL, TWINS_REST_TOKEN and TWINS_MAX_DOCUMENTS (run.sh does)');
}

const accessKey = 'SCWXXXXXXXXXXXXXXXXX';
const makeApi = (settings = {}) =>
  new Iotv1.API(createClient({ accessKey, secretKey, apiURL, defaultRegion: 'fr-par', ...settings }));
const api = makeApi();

// Rejects with exactly `Class` (not a parent class) and the given own properties.
async function rejectsWith(promise, Class, expected) {
  await assert.rejects(promise, (err) => {
    assert.equal(err?.constructor?.name, Class.name, `expected ${Class.name}, got ${err?.name}: ${err?.message}`);
    assert.ok(err instanceof Class);
    assert.ok(err instanceof Errors.ScalewayError);
    for (const [key, value] of Object.entries(expected)) {
      assert.deepEqual(err[key], value, `${Class.name}.${key}`);
    }
    return true;
  });
}

const invalidData = (helpMessage, argumentName = 'data') => ({
  status: 400,
  name: 'InvalidArgumentsError',
  details: [{ argumentName, helpMessage, reason: 'constraint' }],
  message: `invalid argument(s): ${argumentName} does not respect constraint, ${helpMessage}`,
});

const notFound = (documentName) => ({
  status: 404,
  name: 'ResourceNotFoundError',
  resource: 'twin_document',
  resourceId: documentName,
  message: `resource twin_document with ID ${documentName} is not found`,
});

const versionMismatch = (expected, actual) => ({
  status: 412,
  name: 'PreconditionFailedError',
  precondition: 'document_version',
  helpMessage: `expected version ${expected}, document is at ${actual}`,
  message: `precondition failed: document_version, expected version ${expected}, document is at ${actual}`,
});

describe('putTwinDocument', () => {
  test('creates the document at version 1, then replaces it whole', async () => {
    const data = { temperature: 21.5, on: true, mode: 'eco', tags: ['a', 'b'], nested: { x: 1, y: [1, 2, 3] } };
    const created = await api.putTwinDocument({ twinId: 'sdk-put', documentName: 'desired', data });
    assert.deepEqual(created, { twinId: 'sdk-put', documentName: 'desired', version: 1, data });

    const replaced = await api.putTwinDocument({
      twinId: 'sdk-put', documentName: 'desired', version: 1, data: { mode: 'comfort' },
    });
    assert.deepEqual(replaced, { twinId: 'sdk-put', documentName: 'desired', version: 2, data: { mode: 'comfort' } });

    // version 0 (and no version) mean "no constraint".
    const unconstrained = await api.putTwinDocument({
      twinId: 'sdk-put', documentName: 'desired', version: 0, data: {},
    });
    assert.deepEqual(unconstrained, { twinId: 'sdk-put', documentName: 'desired', version: 3, data: {} });
  });

  test('round-trips unicode, big integers and a twin id that needs percent-encoding', async () => {
    const twinId = 'device é 1';
    const data = { text: 'héllo ✓ "quoted" \\ /', max: 9007199254740991, neg: -0.5, deep: { list: [{ a: [] }] } };
    const created = await api.putTwinDocument({ twinId, documentName: 'Doc-1_a.b~c', data });
    assert.deepEqual(created, { twinId, documentName: 'Doc-1_a.b~c', version: 1, data });
    assert.deepEqual(await api.getTwinDocument({ twinId, documentName: 'Doc-1_a.b~c' }), created);
  });

  test('invalid: null inside an array is InvalidArgumentsError, nothing is written', async () => {
    await rejectsWith(
      api.putTwinDocument({ twinId: 'sdk-put-bad', documentName: 'desired', data: { tags: ['a', null] } }),
      Errors.InvalidArgumentsError,
      invalidData('data.tags[1]: arrays cannot contain null'),
    );
    await rejectsWith(api.getTwinDocument({ twinId: 'sdk-put-bad', documentName: 'desired' }),
      Errors.ResourceNotFoundError, notFound('desired'));
  });

  test('invalid: no data, reserved key, bad document name, bad version', async () => {
    await rejectsWith(api.putTwinDocument({ twinId: 'sdk-put-bad', documentName: 'desired' }),
      Errors.InvalidArgumentsError, invalidData('data is required'));
    await rejectsWith(
      api.putTwinDocument({ twinId: 'sdk-put-bad', documentName: 'desired', data: { _secret: 1 } }),
      Errors.InvalidArgumentsError, invalidData("data._secret: keys starting with '_' are reserved"));
    await rejectsWith(api.putTwinDocument({ twinId: 'sdk-put-bad', documentName: 'bad$name', data: {} }),
      Errors.InvalidArgumentsError,
      invalidData('document name may only contain [-_.~0-9a-zA-Z]', 'document_name'));
    await rejectsWith(
      api.putTwinDocument({ twinId: 'sdk-put-bad', documentName: 'desired', version: -1, data: {} }),
      Errors.InvalidArgumentsError, invalidData('version must be an integer from 0 to 2^53', 'version'));
  });

  test('invalid: a version on a document that does not exist is PreconditionFailedError', async () => {
    await rejectsWith(
      api.putTwinDocument({ twinId: 'sdk-put-bad', documentName: 'desired', version: 1, data: {} }),
      Errors.PreconditionFailedError, versionMismatch(1, 0));
  });
});

describe('getTwinDocument', () => {
  test('returns the stored document', async () => {
    const data = { a: 1, b: { c: 'd' } };
    await api.putTwinDocument({ twinId: 'sdk-get', documentName: 'reported', data });
    const got = await api.getTwinDocument({ twinId: 'sdk-get', documentName: 'reported' });
    assert.deepEqual(got, { twinId: 'sdk-get', documentName: 'reported', version: 1, data });
  });

  test('invalid: a missing document, or one of an unknown twin, is ResourceNotFoundError', async () => {
    await rejectsWith(api.getTwinDocument({ twinId: 'sdk-get', documentName: 'missing' }),
      Errors.ResourceNotFoundError, notFound('missing'));
    await rejectsWith(api.getTwinDocument({ twinId: 'sdk-no-such-twin', documentName: 'reported' }),
      Errors.ResourceNotFoundError, notFound('reported'));
  });

  test('invalid: a bad twin id is InvalidArgumentsError', async () => {
    await rejectsWith(api.getTwinDocument({ twinId: 'bad+twin', documentName: 'reported' }),
      Errors.InvalidArgumentsError, invalidData("twin id cannot contain '/', '+', '#' or NUL", 'twin_id'));
  });
});

describe('patchTwinDocument', () => {
  test('merges into the document (RFC 7386) and bumps the version', async () => {
    await api.putTwinDocument({ twinId: 'sdk-patch', documentName: 'desired', data: { a: 1, b: { c: 2, d: 3 } } });
    const patched = await api.patchTwinDocument({
      twinId: 'sdk-patch', documentName: 'desired', version: 1, data: { b: { c: 20, d: null }, e: 'x' },
    });
    assert.deepEqual(patched, {
      twinId: 'sdk-patch', documentName: 'desired', version: 2, data: { a: 1, b: { c: 20 }, e: 'x' },
    });
    assert.deepEqual(await api.getTwinDocument({ twinId: 'sdk-patch', documentName: 'desired' }), patched);
  });

  test('creates a missing document at version 1', async () => {
    const created = await api.patchTwinDocument({ twinId: 'sdk-patch', documentName: 'fresh', data: { k: [1] } });
    assert.deepEqual(created, { twinId: 'sdk-patch', documentName: 'fresh', version: 1, data: { k: [1] } });
  });

  test('invalid: version mismatch is PreconditionFailedError, the document is unchanged', async () => {
    await api.putTwinDocument({ twinId: 'sdk-patch-stale', documentName: 'desired', data: { v: 1 } });
    await api.putTwinDocument({ twinId: 'sdk-patch-stale', documentName: 'desired', data: { v: 2 } });
    await rejectsWith(
      api.patchTwinDocument({ twinId: 'sdk-patch-stale', documentName: 'desired', version: 1, data: { v: 3 } }),
      Errors.PreconditionFailedError, versionMismatch(1, 2));
    assert.deepEqual(await api.getTwinDocument({ twinId: 'sdk-patch-stale', documentName: 'desired' }),
      { twinId: 'sdk-patch-stale', documentName: 'desired', version: 2, data: { v: 2 } });
  });

  test('invalid: null inside an array is InvalidArgumentsError', async () => {
    await rejectsWith(
      api.patchTwinDocument({ twinId: 'sdk-patch', documentName: 'desired', data: { list: [1, [null]] } }),
      Errors.InvalidArgumentsError, invalidData('data.list[1][0]: arrays cannot contain null'));
  });
});

describe('listTwinDocuments', () => {
  test('lists the document names, sorted', async () => {
    for (const documentName of ['zeta', 'alpha', 'Mid']) {
      await api.putTwinDocument({ twinId: 'sdk-list', documentName, data: {} });
    }
    assert.deepEqual(await api.listTwinDocuments({ twinId: 'sdk-list' }), {
      documents: [{ documentName: 'Mid' }, { documentName: 'alpha' }, { documentName: 'zeta' }],
    });
  });

  test('an unknown twin has no documents', async () => {
    assert.deepEqual(await api.listTwinDocuments({ twinId: 'sdk-list-nobody' }), { documents: [] });
  });

  test('invalid: a bad twin id is InvalidArgumentsError', async () => {
    await rejectsWith(api.listTwinDocuments({ twinId: 'bad+twin' }),
      Errors.InvalidArgumentsError, invalidData("twin id cannot contain '/', '+', '#' or NUL", 'twin_id'));
    await rejectsWith(api.listTwinDocuments({ twinId: 'x'.repeat(129) }),
      Errors.InvalidArgumentsError, invalidData('twin id must be 1 to 128 bytes long', 'twin_id'));
  });
});

describe('deleteTwinDocument', () => {
  test('deletes the document: then get is ResourceNotFoundError', async () => {
    await api.putTwinDocument({ twinId: 'sdk-delete', documentName: 'gone', data: { a: 1 } });
    await api.putTwinDocument({ twinId: 'sdk-delete', documentName: 'kept', data: { b: 2 } });
    assert.equal(await api.deleteTwinDocument({ twinId: 'sdk-delete', documentName: 'gone' }), undefined);
    await rejectsWith(api.getTwinDocument({ twinId: 'sdk-delete', documentName: 'gone' }),
      Errors.ResourceNotFoundError, notFound('gone'));
    assert.deepEqual(await api.listTwinDocuments({ twinId: 'sdk-delete' }), { documents: [{ documentName: 'kept' }] });
  });

  test('invalid: deleting a missing document is ResourceNotFoundError', async () => {
    await rejectsWith(api.deleteTwinDocument({ twinId: 'sdk-delete', documentName: 'never' }),
      Errors.ResourceNotFoundError, notFound('never'));
  });
});

describe('deleteTwinDocuments', () => {
  test('deletes every document of the twin', async () => {
    for (const documentName of ['one', 'two']) {
      await api.putTwinDocument({ twinId: 'sdk-delete-all', documentName, data: { n: documentName } });
    }
    await api.putTwinDocument({ twinId: 'sdk-delete-all-other', documentName: 'one', data: {} });
    assert.equal(await api.deleteTwinDocuments({ twinId: 'sdk-delete-all' }), undefined);
    assert.deepEqual(await api.listTwinDocuments({ twinId: 'sdk-delete-all' }), { documents: [] });
    await rejectsWith(api.getTwinDocument({ twinId: 'sdk-delete-all', documentName: 'one' }),
      Errors.ResourceNotFoundError, notFound('one'));
    // Another twin whose id starts with the same characters keeps its documents.
    assert.deepEqual(await api.listTwinDocuments({ twinId: 'sdk-delete-all-other' }),
      { documents: [{ documentName: 'one' }] });
    // Deleting the documents of a twin that has none succeeds too.
    assert.equal(await api.deleteTwinDocuments({ twinId: 'sdk-delete-all' }), undefined);
  });

  test('invalid: a bad twin id is InvalidArgumentsError', async () => {
    await rejectsWith(api.deleteTwinDocuments({ twinId: 'bad+twin' }),
      Errors.InvalidArgumentsError, invalidData("twin id cannot contain '/', '+', '#' or NUL", 'twin_id'));
  });
});

describe('authentication and region', () => {
  test('the configured secret key is accepted', async () => {
    assert.deepEqual(await api.listTwinDocuments({ twinId: 'sdk-auth' }), { documents: [] });
  });

  const denied = {
    status: 401,
    name: 'DeniedAuthenticationError',
    method: 'secret_key',
    reason: 'invalid_argument',
    message: 'denied authentication: invalid secret_key format or empty value',
  };

  test('invalid: a wrong secret key is DeniedAuthenticationError', async () => {
    const wrong = makeApi({ secretKey: randomUUID() });
    await rejectsWith(wrong.getTwinDocument({ twinId: 'sdk-auth', documentName: 'x' }),
      Errors.DeniedAuthenticationError, denied);
    await rejectsWith(wrong.putTwinDocument({ twinId: 'sdk-auth', documentName: 'x', data: {} }),
      Errors.DeniedAuthenticationError, denied);
    // Nothing was written.
    assert.deepEqual(await api.listTwinDocuments({ twinId: 'sdk-auth' }), { documents: [] });
  });

  test('invalid: no credentials at all is DeniedAuthenticationError', async () => {
    const anonymous = new Iotv1.API(createClient({ apiURL, defaultRegion: 'fr-par' }));
    await rejectsWith(anonymous.listTwinDocuments({ twinId: 'sdk-auth' }), Errors.DeniedAuthenticationError, denied);
  });

  test('the region can be given per request', async () => {
    assert.deepEqual(await api.listTwinDocuments({ region: 'fr-par', twinId: 'sdk-auth' }), { documents: [] });
  });

  test('invalid: another region is ResourceNotFoundError', async () => {
    const amsterdam = { status: 404, name: 'ResourceNotFoundError', resource: 'region', resourceId: 'nl-ams' };
    await rejectsWith(makeApi({ defaultRegion: 'nl-ams' }).listTwinDocuments({ twinId: 'sdk-auth' }),
      Errors.ResourceNotFoundError, amsterdam);
    await rejectsWith(api.getTwinDocument({ region: 'nl-ams', twinId: 'sdk-auth', documentName: 'x' }),
      Errors.ResourceNotFoundError, amsterdam);
  });
});

describe('quotas', () => {
  test(`up to ${maxDocuments} documents per twin`, async () => {
    for (let i = 1; i <= maxDocuments; ++i) {
      const doc = await api.putTwinDocument({ twinId: 'sdk-quota', documentName: `d${i}`, data: { i } });
      assert.equal(doc.version, 1);
    }
    // Rewriting an existing document is not a new one.
    const rewritten = await api.putTwinDocument({ twinId: 'sdk-quota', documentName: 'd1', data: { i: 0 } });
    assert.equal(rewritten.version, 2);
  });

  test('invalid: one document more is QuotasExceededError', async () => {
    await rejectsWith(api.putTwinDocument({ twinId: 'sdk-quota', documentName: 'one-too-many', data: {} }),
      Errors.QuotasExceededError, {
        status: 403,
        name: 'QuotasExceededError',
        list: [{ current: maxDocuments, quota: maxDocuments, resource: 'twin_documents', scope: undefined }],
      });
    await rejectsWith(api.patchTwinDocument({ twinId: 'sdk-quota', documentName: 'one-too-many', data: {} }),
      Errors.QuotasExceededError, { status: 403 });
  });
});
