# ruff: noqa: E501  (format tables: one format per line reads best)
"""A corpus of fake secrets and personal data, built from the formats vendors and standards
publish, not from our rules: each builder below writes a value as the format's documentation
describes it (prefix, alphabet, length, check digits), with random bodies from a fixed seed.

Never a real credential: bodies are random, and the corpus is rebuilt on every run.

``corpus()`` returns :class:`Sample` items: the text to plant, and the needles (its
distinctive parts) that must never come out anywhere. ``NORMAL_VALUES`` are ordinary values
that must come out unchanged (the false-positive corpus).

Sources, by the short keys of /work/shared/research/secret-formats.md: vendor pages (V-*),
gitleaks (GL), trufflehog (TH), detect-secrets (DS), Microsoft security-utilities (MS),
presidio (PR), python-stdnum, libphonenumber.
"""

from __future__ import annotations

import base64
import json
import random
import string
import zlib
from collections.abc import Callable
from dataclasses import dataclass

B62 = string.ascii_letters + string.digits
B64 = B62 + "+/"
U64 = B62 + "_-"
HEX = "0123456789abcdef"
UPPER36 = string.ascii_uppercase + string.digits
LOWER36 = string.ascii_lowercase + string.digits
B32 = string.ascii_uppercase + "234567"


@dataclass(frozen=True)
class Sample:
    """One planted value: its format, the text, and what must never come out."""

    format: str
    category: str
    text: str
    needles: tuple[str, ...]


def _r(rng: random.Random, alphabet: str, n: int) -> str:
    return "".join(rng.choice(alphabet) for _ in range(n))


def _mixed(rng: random.Random, alphabet: str, n: int) -> str:
    """Random text that has an upper-case letter, a lower-case letter and a digit when the
    alphabet has them (as real random tokens of 20+ characters almost always do)."""
    while True:
        text = _r(rng, alphabet, n)
        classes = [set(string.ascii_uppercase), set(string.ascii_lowercase), set(string.digits)]
        if all(not (set(alphabet) & c) or (set(text) & c) for c in classes):
            return text


def _base62(value: int, width: int) -> str:
    alphabet = string.digits + string.ascii_uppercase + string.ascii_lowercase
    out = ""
    while value:
        value, rest = divmod(value, 62)
        out = alphabet[rest] + out
    return out.rjust(width, "0")


def _crc_token(rng: random.Random, prefix: str) -> tuple[str, str]:
    """GitHub/npm: 30 random base62 characters plus their CRC32 in 6 base62 digits (V-gh)."""
    body = _mixed(rng, B62, 30)
    return prefix + body + _base62(zlib.crc32(body.encode()), 6), body


def _jwt(rng: random.Random, claims: dict[str, object]) -> str:
    def seg(data: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    signature = base64.urlsafe_b64encode(rng.randbytes(32)).decode().rstrip("=")
    return f"{seg({'alg': 'HS256', 'typ': 'JWT'})}.{seg(claims)}.{signature}"


def _luhn_complete(prefix: str, length: int, rng: random.Random) -> str:
    body = prefix + _r(rng, string.digits, length - len(prefix) - 1)
    for check in string.digits:
        digits = [int(c) for c in body + check]
        total = 0
        for position, digit in enumerate(reversed(digits)):
            doubled = digit * 2 if position % 2 else digit
            total += doubled - 9 if doubled > 9 else doubled
        if total % 10 == 0:
            return body + check
    raise AssertionError("unreachable")


def _iban(country: str, bban: str) -> str:
    """ISO 13616: the check digits make the number mod 97 equal 1."""
    rearranged = bban + country + "00"
    number = int("".join(str(int(c, 36)) for c in rearranged))
    return f"{country}{98 - number % 97:02d}{bban}"


# (format, category, builder) where builder(rng) -> (text, needles)
Builder = Callable[[random.Random], tuple[str, tuple[str, ...]]]
FORMATS: list[tuple[str, str, Builder]] = []


def fmt(name: str, category: str) -> Callable[[Builder], Builder]:
    def register(builder: Builder) -> Builder:
        FORMATS.append((name, category, builder))
        return builder

    return register


def prefixed(name: str, category: str, prefix: str, alphabet: str, n: int) -> None:
    """A token that is ``prefix`` plus ``n`` characters of ``alphabet``."""

    def build(rng: random.Random) -> tuple[str, tuple[str, ...]]:
        body = _mixed(rng, alphabet, n)
        return prefix + body, (body,)

    FORMATS.append((name, category, build))


def keyword(name: str, category: str, key: str, alphabet: str, n: int) -> None:
    """A token without a prefix, in the assignment its vendor documents (``KEY=value``)."""

    def build(rng: random.Random) -> tuple[str, tuple[str, ...]]:
        body = _mixed(rng, alphabet, n)
        return f"{key}={body}", (body,)

    FORMATS.append((name, category, build))


def _uuid(rng: random.Random) -> str:
    h = _r(rng, HEX, 32)
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:]}"


# --- cloud (V-aws, GL, TH, MS, V-cf, V-vercel, V-netlify...) ---
for _p in ("AKIA", "ASIA", "ABIA", "ACCA"):
    prefixed(f"aws-key-id-{_p}", "cloud", _p, UPPER36, 16)
keyword("aws-secret-key", "cloud", "aws_secret_access_key", B64, 40)
keyword("aws-session-token", "cloud", "AWS_SESSION_TOKEN", B64, 160)
prefixed("aws-bedrock", "cloud", "ABSK", B64, 132)
prefixed("aws-appsync", "cloud", "da2-", LOWER36, 26)
prefixed("google-api-key", "cloud", "AIza", U64, 35)
prefixed("gemini-key", "ai", "AIzaSy", U64, 33)
prefixed("google-oauth-token", "cloud", "ya29.", U64, 120)
prefixed("google-client-secret", "cloud", "GOCSPX-", U64, 28)
prefixed("databricks", "cloud", "dapi", HEX, 32)
for _p in ("dop_v1_", "doo_v1_", "dor_v1_"):
    prefixed(f"digitalocean-{_p}", "cloud", _p, HEX, 64)
prefixed("alibaba-key-id", "cloud", "LTAI", B62, 20)
prefixed("heroku-key", "cloud", "HRKU-AA", U64, 58)
for _p in ("cfut_", "cfat_", "cfk_"):
    prefixed(f"cloudflare-{_p}", "cloud", _p, B62, 48)
prefixed("flyio-macaroon", "cloud", "fm2_", B64, 140)
prefixed("flyio-oauth", "cloud", "fo1_", U64, 43)
for _p in ("vcp_", "vci_", "vca_", "vcr_", "vck_"):
    prefixed(f"vercel-{_p}", "cloud", _p, B62, 24)
for _p in ("nfp_", "nfc_", "nfo_", "nfu_", "nfb_"):
    prefixed(f"netlify-{_p}", "cloud", _p, B62 + "_", 36)
prefixed("openshift", "cloud", "sha256~", U64, 43)
prefixed("tencent", "cloud", "AKID", B62, 32)
keyword("azure-storage-key", "cloud", "AccountKey", B64, 86)
keyword("scaleway", "cloud", "SCW_SECRET_KEY", HEX, 32)
keyword("ibm-cloud", "cloud", "IBM_API_KEY", U64, 44)
keyword("confluent", "cloud", "CONFLUENT_SECRET", B64, 64)
keyword("linode", "cloud", "LINODE_TOKEN", HEX, 64)


@fmt("azure-entra-client-secret", "cloud")
def _entra(rng: random.Random) -> tuple[str, tuple[str, ...]]:
    body = _mixed(rng, B62, 3) + "8Q~" + _mixed(rng, B62 + "_~.-", 34)
    return body, (body[6:],)


@fmt("azure-cask", "cloud")
def _cask(rng: random.Random) -> tuple[str, tuple[str, ...]]:
    body = _mixed(rng, B62, 52) + "JQQJ9" + "99" + "AAABACOG" + _mixed(rng, B62, 21)
    return body + "==", (body[:40],)


@fmt("azure-sas", "cloud")
def _sas(rng: random.Random) -> tuple[str, tuple[str, ...]]:
    sig = _mixed(rng, B62, 43)
    return f"https://acct.blob.core.windows.net/c?sv=2022-11-02&sig={sig}%3D", (sig,)


# --- VCS and CI (V-gh, V-gl, GL, TH) ---
for _p in ("ghp_", "gho_", "ghu_", "ghs_", "ghr_"):

    @fmt(f"github-{_p}", "vcs")
    def _gh(rng: random.Random, _p: str = _p) -> tuple[str, tuple[str, ...]]:
        token, body = _crc_token(rng, _p)
        return token, (body,)


prefixed("github-fine-grained", "vcs", "github_pat_", B62 + "_", 82)
keyword("github-legacy", "vcs", "GITHUB_TOKEN", HEX, 40)
for _p, _n in (("glpat-", 20), ("gldt-", 20), ("glrt-", 20), ("glft-", 20), ("glimt-", 25),
               ("glsoat-", 20), ("glffct-", 20), ("gloas-", 64), ("glagent-", 50),
               ("glptt-", 40)):  # fmt: skip
    prefixed(f"gitlab-{_p}", "vcs", _p, U64, _n)
prefixed("gitlab-runner-registration", "vcs", "GR1348941", U64, 20)
prefixed("gitlab-job-token", "vcs", "glcbt-64_", U64, 20)
prefixed("bitbucket-app-password", "vcs", "ATBB", B62, 32)
prefixed("bitbucket-dc", "vcs", "BBDC-", B62, 44)
prefixed("atlassian", "vcs", "ATATT3xFfGF0", U64, 180)
prefixed("circleci", "ci", "CCIPAT_", B62, 22)
keyword("circleci-legacy", "ci", "CIRCLECI_TOKEN", HEX, 40)
keyword("travis", "ci", "TRAVIS_TOKEN", B62, 22)
prefixed("buildkite", "ci", "bkua_", LOWER36, 40)
prefixed("octopus", "ci", "API-", UPPER36, 26)
for _p in ("squ_", "sqp_", "sqa_"):
    prefixed(f"sonar-{_p}", "ci", _p, HEX, 40)
prefixed("sonarcloud", "ci", "sqco_", B62, 59)
prefixed("sourcegraph-cody", "vcs", "slk_", HEX, 64)
prefixed("pulumi", "ci", "pul-", HEX, 40)
prefixed("prefect", "ci", "pnu_", B62, 36)
keyword("snyk", "ci", "SNYK_TOKEN", HEX, 32)
keyword("jenkins", "ci", "JENKINS_API_TOKEN", HEX, 34)


@fmt("circleci-pat", "ci")
def _circle(rng: random.Random) -> tuple[str, tuple[str, ...]]:
    a, b = _mixed(rng, B62, 22), _r(rng, HEX, 40)
    return f"CCIPAT_{a}_{b}", (a, b)


@fmt("terraform-cloud", "ci")
def _tfc(rng: random.Random) -> tuple[str, tuple[str, ...]]:
    a, b = _mixed(rng, B62, 14), _mixed(rng, U64, 67)
    return f"{a}.atlasv1.{b}", (b,)


@fmt("postman", "ci")
def _postman(rng: random.Random) -> tuple[str, tuple[str, ...]]:
    a, b = _r(rng, HEX, 24), _r(rng, HEX, 34)
    return f"PMAK-{a}-{b}", (a, b)


@fmt("sourcegraph", "vcs")
def _sgp(rng: random.Random) -> tuple[str, tuple[str, ...]]:
    a, b = _r(rng, HEX, 16), _r(rng, HEX, 40)
    return f"sgp_{a}_{b}", (b,)


# --- package registries (V-npm, DS, GL, MS, V-crates) ---
@fmt("npm", "registry")
def _npm(rng: random.Random) -> tuple[str, tuple[str, ...]]:
    token, body = _crc_token(rng, "npm_")
    return token, (body,)


@fmt("pypi", "registry")
def _pypi(rng: random.Random) -> tuple[str, tuple[str, ...]]:
    body = _mixed(rng, U64, 120)
    return "pypi-AgEIcHlwaS5vcmc" + body, (body,)


@fmt("testpypi", "registry")
def _testpypi(rng: random.Random) -> tuple[str, tuple[str, ...]]:
    body = _mixed(rng, U64, 120)
    return "pypi-AgENdGVzdC5weXBpLm9yZw" + body, (body,)


prefixed("rubygems", "registry", "rubygems_", HEX, 48)
prefixed("nuget", "registry", "oy2", "abcdefghijklmnopqrstuvwxyz234567", 43)
prefixed("crates-io", "registry", "cio", B62, 32)
prefixed("dockerhub-pat", "registry", "dckr_pat_", U64, 27)
prefixed("dockerhub-oat", "registry", "dckr_oat_", U64, 32)
prefixed("jfrog-api", "registry", "AKCp", B62, 69)
prefixed("jfrog-reference", "registry", "cmVmdGtu", B62, 56)
prefixed("clojars", "registry", "CLOJARS_", LOWER36, 60)
keyword("npmrc", "registry", "//registry.npmjs.org/:_authToken", B62, 36)

# --- payment (V-stripe, TH, GL, V-shop) ---
for _p in ("sk_live_", "sk_test_", "rk_live_", "pk_live_"):
    prefixed(f"stripe-{_p}", "payment", _p, B62, 99)
prefixed("stripe-webhook", "payment", "whsec_", B62, 32)
prefixed("square-access", "payment", "EAAA", U64, 60)
prefixed("square-oauth", "payment", "sq0atp-", U64, 22)
prefixed("square-secret", "payment", "sq0csp-", U64, 43)
for _p in ("shpat_", "shpca_", "shppa_", "shpss_"):
    prefixed(f"shopify-{_p}", "payment", _p, HEX, 32)
prefixed("razorpay", "payment", "rzp_live_", B62, 14)
keyword("paypal", "payment", "PAYPAL_CLIENT_SECRET", U64, 80)
keyword("braintree", "payment", "BRAINTREE_PRIVATE_KEY", HEX, 32)


@fmt("braintree-token", "payment")
def _braintree(rng: random.Random) -> tuple[str, tuple[str, ...]]:
    a, b = _r(rng, LOWER36, 16), _r(rng, HEX, 32)
    return f"access_token$production${a}${b}", (a, b)


@fmt("plaid", "payment")
def _plaid(rng: random.Random) -> tuple[str, tuple[str, ...]]:
    value = _uuid(rng)
    return f"access-production-{value}", (value,)


# --- messaging (V-slack, V-discord, V-twilio, DS...) ---
@fmt("slack-bot", "messaging")
def _slack(rng: random.Random) -> tuple[str, tuple[str, ...]]:
    a, b, c = _r(rng, string.digits, 11), _r(rng, string.digits, 13), _mixed(rng, B62, 24)
    return f"xoxb-{a}-{b}-{c}", (f"{b}-{c}",)


for _p in ("xoxp-", "xoxa-", "xoxr-", "xoxs-", "xoxe-"):
    prefixed(f"slack-{_p}", "messaging", _p, B62, 40)


@fmt("slack-webhook", "messaging")
def _slack_hook(rng: random.Random) -> tuple[str, tuple[str, ...]]:
    a, b, c = _r(rng, UPPER36, 10), _r(rng, UPPER36, 10), _mixed(rng, B62, 24)
    return f"https://hooks.slack.com/services/T{a}/B{b}/{c}", (c,)


@fmt("discord-webhook", "messaging")
def _discord_hook(rng: random.Random) -> tuple[str, tuple[str, ...]]:
    a, b = _r(rng, string.digits, 19), _mixed(rng, U64, 68)
    return f"https://discord.com/api/webhooks/{a}/{b}", (b,)


@fmt("discord-bot", "messaging")
def _discord(rng: random.Random) -> tuple[str, tuple[str, ...]]:
    user = base64.b64encode(str(rng.randrange(10**17, 10**18)).encode()).decode().rstrip("=")
    a, b = _mixed(rng, U64, 6), _mixed(rng, U64, 38)
    return f"{user}.{a}.{b}", (b,)


@fmt("telegram", "messaging")
def _telegram(rng: random.Random) -> tuple[str, tuple[str, ...]]:
    a, b = _r(rng, string.digits, 10), "A" + _mixed(rng, U64, 34)
    return f"{a}:{b}", (b,)


prefixed("twilio-sid", "messaging", "AC", HEX, 32)
prefixed("twilio-key", "messaging", "SK", HEX, 32)
keyword("twilio-auth", "messaging", "TWILIO_AUTH_TOKEN", HEX, 32)


@fmt("sendgrid", "messaging")
def _sendgrid(rng: random.Random) -> tuple[str, tuple[str, ...]]:
    a, b = _mixed(rng, U64, 22), _mixed(rng, U64, 43)
    return f"SG.{a}.{b}", (a, b)


prefixed("mailgun", "messaging", "key-", HEX, 32)


@fmt("mailchimp", "messaging")
def _mailchimp(rng: random.Random) -> tuple[str, tuple[str, ...]]:
    a = _r(rng, HEX, 32)
    return f"{a}-us21", (a,)


@fmt("brevo", "messaging")
def _brevo(rng: random.Random) -> tuple[str, tuple[str, ...]]:
    a, b = _r(rng, HEX, 64), _mixed(rng, B62, 16)
    return f"xkeysib-{a}-{b}", (a,)


@fmt("teams-webhook", "messaging")
def _teams(rng: random.Random) -> tuple[str, tuple[str, ...]]:
    a, b = _uuid(rng), _r(rng, HEX, 32)
    return f"https://acme.webhook.office.com/webhookb2/{a}@{_uuid(rng)}/IncomingWebhook/{b}/x", (b,)


keyword("postmark", "messaging", "POSTMARK_SERVER_TOKEN", HEX, 32)

# --- AI providers (GL, TH, V-oat) ---


@fmt("openai-legacy", "ai")
def _openai(rng: random.Random) -> tuple[str, tuple[str, ...]]:
    a, b = _mixed(rng, B62, 20), _mixed(rng, B62, 20)
    return f"sk-{a}T3BlbkFJ{b}", (a, b)


for _p in ("sk-proj-", "sk-svcacct-", "sk-admin-"):

    @fmt(f"openai-{_p}", "ai")
    def _openai_project(rng: random.Random, _p: str = _p) -> tuple[str, tuple[str, ...]]:
        a, b = _mixed(rng, U64, 74), _mixed(rng, U64, 74)
        return f"{_p}{a}T3BlbkFJ{b}", (a, b)


for _p in ("sk-ant-api03-", "sk-ant-admin01-"):

    @fmt(f"anthropic-{_p}", "ai")
    def _anthropic(rng: random.Random, _p: str = _p) -> tuple[str, tuple[str, ...]]:
        body = _mixed(rng, U64, 93)
        return f"{_p}{body}AA", (body,)


prefixed("anthropic-oauth", "ai", "sk-ant-oat01-", U64, 90)
prefixed("openrouter", "ai", "sk-or-v1-", HEX, 64)
prefixed("huggingface", "ai", "hf_", string.ascii_letters, 34)
prefixed("huggingface-org", "ai", "api_org_", string.ascii_letters, 34)
prefixed("replicate", "ai", "r8_", U64, 37)
prefixed("groq", "ai", "gsk_", B62, 52)
prefixed("perplexity", "ai", "pplx-", B62, 48)
prefixed("xai", "ai", "xai-", B62 + "_", 80)
prefixed("pinecone", "ai", "pcsk_12345_", B62, 63)
prefixed("elevenlabs", "ai", "sk_", HEX, 48)
keyword("cohere", "ai", "COHERE_API_KEY", B62, 40)
keyword("mistral", "ai", "MISTRAL_API_KEY", B62, 32)
keyword("deepseek", "ai", "DEEPSEEK_API_KEY", "sk-" + LOWER36, 35)
keyword("together", "ai", "TOGETHER_API_KEY", HEX, 64)


@fmt("langsmith", "ai")
def _langsmith(rng: random.Random) -> tuple[str, tuple[str, ...]]:
    a, b = _r(rng, HEX, 32), _r(rng, HEX, 10)
    return f"lsv2_pt_{a}_{b}", (a,)


@fmt("langfuse", "ai")
def _langfuse(rng: random.Random) -> tuple[str, tuple[str, ...]]:
    a = _uuid(rng)
    return f"sk-lf-{a}", (a,)


# --- observability (GL, TH, V-grafana, V-dt, V-hc, V-sentry) ---
keyword("datadog-api", "observability", "DD_API_KEY", HEX, 32)
keyword("datadog-app", "observability", "DD_APP_KEY", HEX, 40)
prefixed("newrelic-user", "observability", "NRAK-", UPPER36, 27)
prefixed("newrelic-insights", "observability", "NRII-", U64, 32)
prefixed("newrelic-browser", "observability", "NRJS-", HEX, 19)
prefixed("sentry-user", "observability", "sntryu_", HEX, 64)
prefixed("grafana-cloud", "observability", "glc_", B64, 120)
prefixed("honeycomb-ingest", "observability", "hcaik_", B62, 58)
prefixed("posthog", "observability", "phx_", B62, 44)
keyword("sumologic", "observability", "SUMOLOGIC_ACCESS_KEY", B62, 64)


@fmt("newrelic-license", "observability")
def _nr_license(rng: random.Random) -> tuple[str, tuple[str, ...]]:
    a = _r(rng, HEX, 32)
    return f"{a}FFFFNRAL", (a,)


@fmt("sentry-dsn", "observability")
def _sentry(rng: random.Random) -> tuple[str, tuple[str, ...]]:
    a = _r(rng, HEX, 32)
    return f"https://{a}@o4504.ingest.sentry.io/4504", (a,)


@fmt("grafana-sa", "observability")
def _grafana(rng: random.Random) -> tuple[str, tuple[str, ...]]:
    a, b = _mixed(rng, B62, 32), _r(rng, HEX, 8)
    return f"glsa_{a}_{b}", (a,)


@fmt("dynatrace", "observability")
def _dynatrace(rng: random.Random) -> tuple[str, tuple[str, ...]]:
    a, b = _r(rng, UPPER36, 24), _r(rng, UPPER36, 64)
    return f"dt0c01.{a}.{b}", (a, b)


@fmt("splunk-hec", "observability")
def _splunk(rng: random.Random) -> tuple[str, tuple[str, ...]]:
    a = _uuid(rng).upper()
    return f"Authorization: Splunk {a}", (a,)


@fmt("launchdarkly", "observability")
def _launchdarkly(rng: random.Random) -> tuple[str, tuple[str, ...]]:
    a = _uuid(rng)
    return f"sdk-{a}", (a,)


@fmt("otlp-headers", "observability")
def _otlp_headers(rng: random.Random) -> tuple[str, tuple[str, ...]]:
    a = _mixed(rng, B62, 32)
    return f"OTEL_EXPORTER_OTLP_HEADERS=x-honeycomb-team={a}", (a,)


# --- databases (TH, V-ghss) ---
for _scheme in ("postgres", "postgresql", "mysql", "mongodb", "mongodb+srv", "redis", "rediss",
                "amqp", "amqps", "mssql", "ldap", "ftp", "clickhouse", "postgresql+psycopg"):  # fmt: skip

    @fmt(f"uri-{_scheme}", "database")
    def _uri(rng: random.Random, _scheme: str = _scheme) -> tuple[str, tuple[str, ...]]:
        user, password = "u" + _r(rng, string.ascii_lowercase, 7), _mixed(rng, B62, 16)
        return f"{_scheme}://{user}:{password}@db.example.com:5432/app", (password,)


@fmt("jdbc", "database")
def _jdbc(rng: random.Random) -> tuple[str, tuple[str, ...]]:
    password = _mixed(rng, B62, 14)
    return f"jdbc:sqlserver://db.example.com:1433;user=app;password={password};", (password,)


@fmt("ado-net", "database")
def _ado(rng: random.Random) -> tuple[str, tuple[str, ...]]:
    password = _mixed(rng, B62, 14)
    return f"Server=tcp:db.example.com;Database=app;User Id=app;Password={password};", (password,)


prefixed("planetscale-token", "database", "pscale_tkn_", U64, 43)
prefixed("planetscale-password", "database", "pscale_pw_", U64, 43)
prefixed("supabase", "database", "sbp_", LOWER36, 40)
prefixed("neon", "database", "napi_", LOWER36, 64)

# --- secrets managers, identity, SaaS ---
prefixed("vault-service", "secrets-manager", "hvs.", U64, 95)
prefixed("vault-batch", "secrets-manager", "hvb.", U64, 140)
for _p in ("dp.pt.", "dp.st.", "dp.ct.", "dp.sa."):
    prefixed(f"doppler-{_p}", "secrets-manager", _p, B62, 43)
prefixed("1password-service", "secrets-manager", "ops_eyJ", B64, 260)


@fmt("age", "secrets-manager")
def _age(rng: random.Random) -> tuple[str, tuple[str, ...]]:
    body = _r(rng, "QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L", 58)
    return f"AGE-SECRET-KEY-1{body}", (body,)


@fmt("tailscale", "secrets-manager")
def _tailscale(rng: random.Random) -> tuple[str, tuple[str, ...]]:
    a, b = _mixed(rng, B62, 12), _mixed(rng, B62, 32)
    return f"tskey-auth-{a}-{b}", (b,)


keyword("okta", "secrets-manager", "OKTA_API_TOKEN", "00" + U64, 42)
prefixed("linear", "saas", "lin_api_", B62, 40)
prefixed("figma", "saas", "figd_", U64, 40)
prefixed("contentful", "saas", "CFPAT-", U64, 43)
prefixed("dropbox", "saas", "sl.", U64, 140)
prefixed("shippo", "saas", "shippo_live_", HEX, 40)
prefixed("easypost", "saas", "EZAK", B62, 54)


@fmt("notion", "saas")
def _notion(rng: random.Random) -> tuple[str, tuple[str, ...]]:
    a = _r(rng, string.digits, 11) + _mixed(rng, B62, 35)
    return f"ntn_{a}", (a,)


@fmt("airtable", "saas")
def _airtable(rng: random.Random) -> tuple[str, tuple[str, ...]]:
    a, b = _mixed(rng, B62, 14), _r(rng, HEX, 64)
    return f"pat{a}.{b}", (b,)


# --- generic: private keys, JWTs, URL credentials, assignments, headers ---
for _kind in ("", "RSA ", "EC ", "DSA ", "OPENSSH ", "ENCRYPTED "):

    @fmt(f"private-key-{_kind.strip() or 'pkcs8'}", "private-key")
    def _pem(rng: random.Random, _kind: str = _kind) -> tuple[str, tuple[str, ...]]:
        body = "\n".join(_mixed(rng, B64, 64) for _ in range(3))
        text = f"-----BEGIN {_kind}PRIVATE KEY-----\n{body}\n-----END {_kind}PRIVATE KEY-----"
        return text, tuple(body.split("\n"))


@fmt("private-key-escaped", "private-key")
def _pem_escaped(rng: random.Random) -> tuple[str, tuple[str, ...]]:
    a, b = _mixed(rng, B64, 64), _mixed(rng, B64, 40)
    return f"-----BEGIN PRIVATE KEY-----\\n{a}\\n{b}\\n-----END PRIVATE KEY-----", (a, b)


@fmt("pgp-private-key", "private-key")
def _pgp(rng: random.Random) -> tuple[str, tuple[str, ...]]:
    a = _mixed(rng, B64, 64)
    return f"-----BEGIN PGP PRIVATE KEY BLOCK-----\n\n{a}\n-----END PGP PRIVATE KEY BLOCK-----", (
        a,
    )


@fmt("jwt", "generic")
def _jwt_sample(rng: random.Random) -> tuple[str, tuple[str, ...]]:
    token = _jwt(rng, {"sub": "u" + _r(rng, string.digits, 9), "iat": 1700000000})
    return token, (token.split(".")[1], token.split(".")[2])


@fmt("bearer", "generic")
def _bearer(rng: random.Random) -> tuple[str, tuple[str, ...]]:
    a = _mixed(rng, B62 + "-._~", 40)
    return f"Authorization: Bearer {a}", (a,)


@fmt("basic-auth", "generic")
def _basic(rng: random.Random) -> tuple[str, tuple[str, ...]]:
    a = base64.b64encode(f"admin:{_mixed(rng, B62, 12)}".encode()).decode()
    return f"Authorization: Basic {a}", (a,)


@fmt("url-credentials", "generic")
def _url(rng: random.Random) -> tuple[str, tuple[str, ...]]:
    user, password = "u" + _r(rng, string.ascii_lowercase, 7), _mixed(rng, B62, 14)
    return f"https://{user}:{password}@git.example.com/org/repo.git", (password, user)


for _key in ("password", "passwd", "secret", "token", "api_key", "apikey", "access_key",
             "client_secret", "DB_PASSWORD", "auth_token", "private_key", "credentials"):  # fmt: skip
    for _sep in ("=", ": "):

        @fmt(f"assignment-{_key}{_sep.strip()}", "generic")
        def _assign(
            rng: random.Random, _key: str = _key, _sep: str = _sep
        ) -> tuple[str, tuple[str, ...]]:
            value = _mixed(rng, B62 + "!$%*", 16)
            return f"{_key}{_sep}{value}", (value,)


@fmt("query-token", "generic")
def _query(rng: random.Random) -> tuple[str, tuple[str, ...]]:
    a = _mixed(rng, B62, 24)
    return f"https://api.example.com/v1/items?access_token={a}&page=2", (a,)


@fmt("curl-user", "generic")
def _curl(rng: random.Random) -> tuple[str, tuple[str, ...]]:
    a = _mixed(rng, B62, 14)
    return f"curl -u admin:{a} https://api.example.com", (a,)


# Unknown formats: only the entropy catch-all can catch these.
for _n, _alphabet in ((24, B62), (32, B62), (40, B64), (48, U64), (64, B62)):

    @fmt(f"unknown-random-{_n}", "generic")
    def _random(
        rng: random.Random, _n: int = _n, _alphabet: str = _alphabet
    ) -> tuple[str, tuple[str, ...]]:
        a = _mixed(rng, _alphabet, _n)
        return a, (a,)


# --- personal data ---
_NAMES = string.ascii_lowercase


def _user(rng: random.Random) -> str:
    return "u" + _r(rng, _NAMES, 7)


@fmt("home-posix", "pii")
def _home(rng: random.Random) -> tuple[str, tuple[str, ...]]:
    user = _user(rng)
    return f"/home/{user}/projects/app/config.yaml", (user,)


@fmt("home-macos", "pii")
def _home_mac(rng: random.Random) -> tuple[str, tuple[str, ...]]:
    user = _user(rng)
    return f"/Users/{user}/Library/Caches/app", (user,)


@fmt("home-windows", "pii")
def _home_win(rng: random.Random) -> tuple[str, tuple[str, ...]]:
    user = _user(rng)
    return f"C:\\Users\\{user}\\AppData\\Local\\app", (user,)


@fmt("home-windows-forward", "pii")
def _home_win2(rng: random.Random) -> tuple[str, tuple[str, ...]]:
    user = _user(rng)
    return f"C:/Users/{user}/Documents/app", (user,)


@fmt("home-wsl", "pii")
def _home_wsl(rng: random.Random) -> tuple[str, tuple[str, ...]]:
    user = _user(rng)
    return f"/mnt/c/Users/{user}/src", (user,)


for _suffix in ("corp", "internal", "local", "lan", "intranet", "home.arpa", "localdomain"):

    @fmt(f"host-{_suffix}", "pii")
    def _host(rng: random.Random, _suffix: str = _suffix) -> tuple[str, tuple[str, ...]]:
        name = "h" + _r(rng, LOWER36, 9)
        return f"build on {name}.{_suffix} failed", (name,)


@fmt("host-corp-domain", "pii")
def _host_corp(rng: random.Random) -> tuple[str, tuple[str, ...]]:
    name = "laptop-" + _r(rng, _NAMES, 7)
    return f"{name}.corp.example.com", (name,)


for _prefix, _n in (("DESKTOP-", 7), ("LAPTOP-", 8), ("WIN-", 11)):

    @fmt(f"host-{_prefix.lower().rstrip('-')}", "pii")
    def _winhost(
        rng: random.Random, _prefix: str = _prefix, _n: int = _n
    ) -> tuple[str, tuple[str, ...]]:
        name = _prefix + _mixed(rng, UPPER36, _n)
        return name, (name,)


for _brand, _prefix, _length in (("visa", "4", 16), ("mastercard", "51", 16),
                                 ("mastercard-2", "2221", 16), ("amex", "37", 15),
                                 ("discover", "6011", 16), ("jcb", "3530", 16),
                                 ("unionpay", "62", 19), ("diners", "36", 14)):  # fmt: skip

    @fmt(f"card-{_brand}", "pii")
    def _card(
        rng: random.Random, _prefix: str = _prefix, _length: int = _length
    ) -> tuple[str, tuple[str, ...]]:
        number = _luhn_complete(_prefix, _length, rng)
        spaced = " ".join(number[i : i + 4] for i in range(0, len(number), 4))
        text = rng.choice([number, spaced, spaced.replace(" ", "-")])
        return f"card {text} ok", (number, text)


@fmt("ssn", "pii")
def _ssn(rng: random.Random) -> tuple[str, tuple[str, ...]]:
    area = rng.choice([n for n in range(1, 900) if n != 666])
    value = f"{area:03d}-{rng.randrange(1, 100):02d}-{rng.randrange(1, 10000):04d}"
    return f"SSN {value}", (value,)


for _country, _bban in (("DE", lambda r: _r(r, string.digits, 18)),
                        ("GB", lambda r: "WEST" + _r(r, string.digits, 14)),
                        ("FR", lambda r: _r(r, string.digits, 23)),
                        ("NL", lambda r: "ABNA" + _r(r, string.digits, 10)),
                        ("ES", lambda r: _r(r, string.digits, 20))):  # fmt: skip

    @fmt(f"iban-{_country}", "pii")
    def _iban_sample(
        rng: random.Random, _country: str = _country, _bban: Callable[[random.Random], str] = _bban
    ) -> tuple[str, tuple[str, ...]]:
        value = _iban(_country, _bban(rng))
        text = rng.choice([value, " ".join(value[i : i + 4] for i in range(0, len(value), 4))])
        return f"IBAN {text}", (value[4:], text)


for _label, _builder in (
    ("phone-us", lambda r: f"({r.randrange(201, 999)}) {r.randrange(201, 999)}-{r.randrange(0, 10000):04d}"),
    ("phone-us-dash", lambda r: f"{r.randrange(201, 999)}-{r.randrange(201, 999)}-{r.randrange(0, 10000):04d}"),
    ("phone-e164", lambda r: f"+1{r.randrange(201, 999)}{r.randrange(201, 999)}{r.randrange(0, 10000):04d}"),
    ("phone-uk", lambda r: f"+44 20 {r.randrange(1000, 9999)} {r.randrange(1000, 9999)}"),
    ("phone-de", lambda r: f"+49 30 {r.randrange(100000, 999999)}"),
    ("phone-fr", lambda r: f"+33 1 {r.randrange(10, 99)} {r.randrange(10, 99)} {r.randrange(10, 99)} {r.randrange(10, 99)}"),
    ("phone-uk-national", lambda r: f"020 {r.randrange(1000, 9999)} {r.randrange(1000, 9999)}"),
):  # fmt: skip

    @fmt(_label, "pii")
    def _phone(
        rng: random.Random, _builder: Callable[[random.Random], str] = _builder
    ) -> tuple[str, tuple[str, ...]]:
        value = _builder(rng)
        return f"call {value}", (value,)


@fmt("email", "pii")
def _email(rng: random.Random) -> tuple[str, tuple[str, ...]]:
    user = "m" + _r(rng, LOWER36, 8)
    return f"mail {user}.doe@example.org now", (user,)


@fmt("ipv4", "pii")
def _ipv4(rng: random.Random) -> tuple[str, tuple[str, ...]]:
    value = ".".join(str(rng.randrange(11, 250)) for _ in range(4))
    return f"from {value}", (value,)


@fmt("ipv6", "pii")
def _ipv6(rng: random.Random) -> tuple[str, tuple[str, ...]]:
    value = "2001:db8:" + ":".join(_r(rng, HEX, 4) for _ in range(6))
    return f"from {value}", (value,)


@fmt("mac", "pii")
def _mac(rng: random.Random) -> tuple[str, tuple[str, ...]]:
    value = ":".join(_r(rng, HEX, 2) for _ in range(6))
    return f"nic {value}", (value,)


@fmt("uk-nino", "pii")
def _nino(rng: random.Random) -> tuple[str, tuple[str, ...]]:
    value = rng.choice("ABCEGHJKLMNPRSTWXYZ") + rng.choice("ABCEGHJKLMNPRSTWXYZ")
    value += _r(rng, string.digits, 6) + rng.choice("ABCD")
    return f"NINO {value}", (value,)


def corpus(seed: int = 20261202, per_format: int = 2) -> list[Sample]:
    """``per_format`` samples of every format (the same ones for the same seed)."""
    rng = random.Random(seed)
    samples = []
    for name, category, build in FORMATS:
        for _ in range(per_format):
            text, needles = build(rng)
            samples.append(Sample(name, category, text, tuple(n for n in needles if n)))
    return samples


#: Ordinary values that must pass unchanged through text scrubbing, identifier checks and
#: (when they fit the names grammar) name checks: the false-positive corpus.
NORMAL_VALUES = (
    # command and stage names, options
    "deploy", "stage new", "build+upload", "init", "--force", "-v", "--dry-run", "prod",
    "staging", "dev-2", "canary", "blue-green", "rollback", "migrate.up", "db.seed",
    # regions and zones
    "eu-west-1", "us-east-2", "ap-southeast-2", "europe-west4-b", "westeurope",
    "cn-north-1", "us-gov-west-1", "me-central-1",
    # file extensions and names
    ".py", ".tar.gz", ".json", ".yaml", ".whl", "Dockerfile", "pyproject.toml",
    "requirements-dev.txt", "docker-compose.override.yml", "index.d.ts",
    # package names
    "opentelemetry-exporter-otlp-proto-http", "opentelemetry-instrumentation-requests",
    "typing_extensions", "charset-normalizer", "google-cloud-storage", "azure-identity",
    "scikit-learn", "nvidia-cudnn-cu12", "types-PyYAML", "@babel/core", "zope.interface",
    "backports.zoneinfo", "ruamel.yaml.clib",
    # versions
    "1.4.2", "2.0.0rc1", "1.0.0-beta.2+exp.sha.5114f85", "0.15.153", "v3.12.1",
    "2024.12.1", "1.26.4", "3.11.7", "5.15.153.1-microsoft-standard-WSL2",
    "6.8.0-1014-azure", "10.0.22631", "14.4.1", "2.1.0.dev0", "1.2.3.post4",
    # uuids and digests
    "0b3f5c2e-1d4a-4c6b-9a8e-7f6d5c4b3a21", "123e4567-e89b-12d3-a456-426614174000",
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "d41d8cd98f00b204e9800998ecf8427e", "da39a3ee5e6b4b0d3255bfef95601890afd80709",
    "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    # identifiers of the SDK and frameworks
    "cli_telemetry.command.duration", "deploy.functions.added", "gen_ai.request.model",
    "builtins.ValueError", "requests.exceptions.ConnectionError",
    "ConnectionRefusedError", "AbstractSingletonProxyFactoryBean",
    "DeployStackFailedException", "github_actions", "claude_code", "usage_error",
    "amd64", "arm64", "x86_64", "cpython", "pypy", "linux", "darwin", "windows",
    "gpt-4o-mini", "claude-3-5-sonnet-20241022", "llama-3.1-70b-instruct",
    "org.apache.commons.lang3.StringUtils", "com.example.deploy.v2.DeployService",
    # units and durations
    "By", "s", "ms", "{function}", "By/s", "1h30m", "250ms", "PT1M30S",
    # plain sentences
    "deployed 3 functions in 2.5s", "the build took longer than usual",
    "retrying after a timeout (attempt 2 of 5)", "cache hit ratio 0.93",
)  # fmt: skip
