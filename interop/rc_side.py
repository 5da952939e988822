# -*- coding: utf-8 -*-
"""The Python side of `cargo xtask interop`: rc 0.3.1 itself, on Python 2.7.

Reads a plan (JSON) on stdin from the Rust side (interop/src/main.rs), which
has started the redis-servers and written its own entries, then:
  - places keys with rc's routers (no network),
  - reads what Rust wrote and compares it with the values below (VALUES, the
    twin of interop/src/values.rs) or with the plan's generated values,
  - writes the same values for Rust to read,
  - calls @cache.cache() functions: those Rust called must be hits, and
    computes others for Rust to read; and gives rc's key of every call.
Prints one JSON report on stdout. Python literals here, Rust literals there:
neither side's encoder is trusted to check itself.
"""
import json
import math
import struct
import sys

import rc
import redis
from rc.utils import generate_key_for_cached_func

# Python values; the same ids, as Rust literals, are in interop/src/values.rs.
VALUES = [
    None,
    True,
    False,
    0,
    -1,
    2 ** 31,
    2 ** 53 + 1,
    9223372036854775807,
    -9223372036854775808,
    18446744073709551615,
    12345678901234567890123456789,
    -170141183460469231731687303715884105728,
    0.1,
    1.0,
    -0.0,
    1e16,
    5e-324,
    1.7976931348623157e308,
    1 / 3.0,
    float('nan'),
    float('inf'),
    float('-inf'),
    u'',
    u'caf\xe9 \u4e2d\u6587 \U0001f600',
    u'quotes " \' \\ / \n\t\r\x00\x1f',
    u'\ud7ff\ue000\uffff',
    [],
    [1, 2.5, u'x', None, True, [u'nested', []]],
    {},
    {u'a': 1, u'b': [1, 2, {u'c': None}],
     u'\xe9\U0001f600': {u'deep': {u'deeper': [1e-7, -3]}}},
    {u'post': {u'id': 7, u'title': u'Hello, "world"',
               u'tags': [u'rust', u'python'], u'score': 4.25,
               u'draft': False}},
    123456789.125,
    -2.5e-300,
]


def f64(bits):
    return struct.unpack('<d', struct.pack('<Q', bits))[0]


def bits(x):
    return struct.unpack('<Q', struct.pack('<d', x))[0]


def same(a, b):
    """Equal, and of the same JSON type (Python's 1 == 1.0 == True is not)."""
    num = (int, long)
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, num) or isinstance(b, num):
        return isinstance(a, num) and isinstance(b, num) and a == b
    if isinstance(a, float) or isinstance(b, float):
        if not (isinstance(a, float) and isinstance(b, float)):
            return False
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        return bits(a) == bits(b)
    if isinstance(a, basestring) or isinstance(b, basestring):
        return (isinstance(a, basestring) and isinstance(b, basestring)
                and a == b)
    if isinstance(a, list) or isinstance(b, list):
        return (isinstance(a, list) and isinstance(b, list)
                and len(a) == len(b)
                and all(same(x, y) for x, y in zip(a, b)))
    if isinstance(a, dict) or isinstance(b, dict):
        return (isinstance(a, dict) and isinstance(b, dict)
                and sorted(a) == sorted(b)
                and all(same(a[k], b[k]) for k in a))
    return a is None and b is None


def host_map(hosts):
    """A host map as a Python config holds it: byte strings, int names."""
    out = {}
    for name, cfg in hosts:
        conf = {}
        for k, v in cfg.items():
            conf[str(k)] = v.encode('utf-8') if isinstance(v, unicode) else v
        out[name] = conf
    return out


ROUTERS = {
    'crc32': rc.RedisCRC32HashRouter,
    'ketama': rc.RedisConsistentHashRouter,
}


def cluster(m, router, namespace=None):
    return rc.CacheCluster(host_map(m['hosts']), router_cls=ROUTERS[router],
                           namespace=namespace)


def arg(a):
    """A call argument of the plan: floats travel as their bits."""
    if isinstance(a, dict):
        return f64(a['f64'])
    if isinstance(a, unicode):
        return a
    return a


class Report(object):
    def __init__(self):
        self.counts = {}
        self.mismatches = []

    def count(self, what, n=1):
        self.counts[what] = self.counts.get(what, 0) + n

    def check(self, what, key, got, want):
        if same(got, want):
            self.count(what)
        else:
            self.mismatches.append(u'%s %r: got %r, want %r' % (what, key, got, want))


def main():
    plan = json.loads(sys.stdin.read())
    report = Report()
    out = {'placement': {}}

    # (a) placement: rc's routers, no network.
    for m in plan['placement_maps']:
        for router in ('crc32', 'ketama'):
            r = rc.redis_cluster.RedisCluster(
                host_map(m['hosts']), router_cls=ROUTERS[router]).router
            out['placement']['%s/%s' % (m['name'], router)] = [
                unicode(r.get_host_for_key(k)) for k in plan['keys']]

    # (b) values: Rust's entries read here, ours written for Rust.
    single = rc.Cache(redis_options={'unix_socket_path': plan['single']},
                      namespace=plan['namespace'])
    caches = [('single', single)] + [
        (m['name'] + '/' + m['router'],
         cluster(m, m['router'], plan['namespace']))
        for m in plan['value_maps']]
    ids = range(len(VALUES))
    for name, cache in caches:
        got = [cache.get('rs:val:%d' % i) for i in ids[::2]]
        got += cache.get_many(*['rs:val:%d' % i for i in ids[1::2]])
        for i, v in zip(ids[::2] + ids[1::2], got):
            report.check('rust->python ' + name, i, v, VALUES[i])
        for i in ids[::2]:
            cache.set('py:val:%d' % i, VALUES[i], expire=plan['expire'])
        cache.set_many(dict(('py:val:%d' % i, VALUES[i]) for i in ids[1::2]),
                       expire=plan['expire'])
        gen = plan['generated']
        got = cache.get_many(*['rs:gen:%d' % i for i in range(len(gen))])
        for i, (v, want) in enumerate(zip(got, gen)):
            report.check('rust->python ' + name, 'gen %d' % i, v, want)
        cache.set_many(dict(('py:gen:%d' % i, v) for i, v in enumerate(gen)),
                       expire=plan['expire'])
    # TTL of what Rust wrote with an expiry.
    ttl = single.client.ttl(plan['namespace'] + 'rs:val:0')
    if 0 < ttl <= plan['rust_expire'] and ttl > plan['rust_expire'] - 60:
        report.count('ttl rust->python')
    else:
        report.mismatches.append(u'TTL of rs:val:0 is %r, Rust gave %d' %
                                 (ttl, plan['rust_expire']))

    # (c) decorated functions: rc's keys, hits on what Rust computed.
    d = plan['decorated']
    cache = cluster(d['map'], d['map']['router'])
    ran = {'n': 0, 'i': None}

    def body(fn):
        def run(*args):
            ran['n'] += 1
            return {u'by': u'python', u'fn': fn, u'i': ran['i']}
        run.__name__ = str(fn)
        run.__module__ = 'blog.models'
        return run

    fns = {
        'get_post': cache.cache()(body(u'get_post')),
        'search': cache.cache()(body(u'search')),
        'tagged': cache.cache(key_prefix='v2')(body(u'tagged')),
    }
    prefixes = {'get_post': None, 'search': None, 'tagged': 'v2'}
    keys = []
    for who in ('rust', 'python'):
        for i, (fn, args) in enumerate(d[who]):
            args = [arg(a) for a in args]
            keys.append(generate_key_for_cached_func(
                prefixes[fn], fns[fn], *args))
            before = ran['n']
            ran['i'] = i
            v = fns[fn](*args)
            if who == 'rust':
                if ran['n'] != before:
                    report.mismatches.append(
                        u'%s%r missed: Rust stored no entry under %r' %
                        (fn, tuple(args), keys[-1]))
                else:
                    report.check('decorated rust->python', keys[-1], v,
                                 {u'by': u'rust', u'fn': unicode(fn), u'i': i})
            else:
                report.count('decorated computed by python')
    out['decorated_keys'] = keys
    out['versions'] = {'python': sys.version.split()[0], 'rc': rc.__version__,
                       'redis': redis.__version__}
    out['counts'] = report.counts
    out['mismatches'] = report.mismatches
    sys.stdout.write(json.dumps(out))


if __name__ == '__main__':
    main()
