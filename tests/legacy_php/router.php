<?php
// Stand-in for the legacy PHP chat backend: the same public contract as the new engine, served by
// a real `php -S` (or php-fpm) so routing, shadowing and rollback are tested against a real server.
//
// State lives in files under LEGACY_DATA_DIR: sessions/<id>.json, shadow_sessions/<id>.json and
// leads.jsonl (one line per submitted lead). A request with `X-Shadow-Request: 1` uses the shadow
// session folder and never writes a lead: the side-effect-free mode the gateway's shadow relies on.
//
// Test hooks, all on the query string, only when the environment sets LEGACY_TEST_HOOKS=1 (the
// tests do; `make run`'s stand-in does not, so nobody reaches them through nginx): `sleep_ms=N`
// answers late; `debug=echo` answers with what the request carried (method, path, query,
// headers, cookies, body) and sets two cookies.

declare(strict_types=1);

const COOKIE = 'legacy_chat';
const STEPS = ['describe', 'name', 'phone', 'email', 'zip', 'done'];
const CATEGORIES = [
    'dui' => ['dui', 'dwi', 'drunk driving', 'breathalyzer'],
    'workers_comp' => ['at work', 'on the job', 'workers comp', "workers' comp", 'my employer'],
    'medical_malpractice' => ['surgeon', 'misdiagnos', 'malpractice', 'hospital'],
    'personal_injury' => ['accident', 'injured', 'hurt', 'crash', 'slip', 'bitten'],
    'family' => ['divorce', 'custody', 'child support', 'alimony'],
    'criminal' => ['arrested', 'charged', 'felony', 'theft', 'assault'],
    'immigration' => ['visa', 'green card', 'deport', 'asylum', 'citizenship'],
    'bankruptcy' => ['bankruptcy', 'debt', 'creditors', 'foreclos'],
    'employment' => ['fired', 'wrongful termination', 'harass', 'overtime', 'discriminat'],
    'estate' => ['will', 'estate', 'probate', 'inheritance', 'trust'],
    'real_estate' => ['landlord', 'tenant', 'eviction', 'property line', 'closing'],
    'disability' => ['disability', 'ssdi', 'ssi'],
];

$dataDir = getenv('LEGACY_DATA_DIR') ?: sys_get_temp_dir() . '/legacy-chat';

function reply_json(int $status, array $body, array $cookies = []): void
{
    http_response_code($status);
    header('Content-Type: application/json');
    header('X-Legacy-Backend: php');
    foreach ($cookies as $cookie) {
        header('Set-Cookie: ' . $cookie, false);
    }
    echo json_encode($body, JSON_UNESCAPED_SLASHES);
}

function session_cookie(string $id): string
{
    return COOKIE . '=' . $id . '; Path=/; Max-Age=604800; HttpOnly; SameSite=Lax';
}

function detect_category(string $text): ?string
{
    $lower = strtolower($text);
    foreach (CATEGORIES as $slug => $words) {
        foreach ($words as $word) {
            if (str_contains($lower, $word)) {
                return $slug;
            }
        }
    }
    return null;
}

function load_session(string $dir, ?string $id): ?array
{
    if ($id === null || !preg_match('/^[A-Za-z0-9_-]{8,64}$/', $id)) {
        return null;
    }
    $path = "$dir/$id.json";
    if (!is_file($path)) {
        return null;
    }
    $data = json_decode((string) file_get_contents($path), true);
    return is_array($data) ? $data : null;
}

function advance(array &$session, string $message): string
{
    $step = $session['step'];
    if ($step === 'done') {
        return 'Thanks, we already have your details. An attorney will contact you shortly.';
    }
    if ($step === 'describe') {
        $session['description'] = trim($session['description'] . "\n" . $message);
        $category = detect_category($session['description']);
        if ($category === null && $session['asks'] < 1) {
            $session['asks'] += 1;
            return 'Could you tell me a little more about what happened?';
        }
        $session['category'] = $category ?? 'general';
        $session['step'] = 'name';
        return 'Thank you. May I have your full name?';
    }
    if ($step === 'name') {
        if (!preg_match("/[A-Za-z][A-Za-z'-]+\\s+[A-Za-z][A-Za-z'-]+/", $message, $m)) {
            return 'Sorry, please give your first and last name.';
        }
        $session['contact']['name'] = $m[0];
        $session['step'] = 'phone';
        return "What's the best phone number to reach you?";
    }
    if ($step === 'phone') {
        $digits = preg_replace('/\D/', '', $message);
        if (strlen($digits) === 11 && $digits[0] === '1') {
            $digits = substr($digits, 1);
        }
        if (strlen($digits) !== 10) {
            return 'Sorry, that phone number does not look right. Could you enter it again?';
        }
        $session['contact']['phone'] = $digits;
        $session['step'] = 'email';
        return 'And your email address?';
    }
    if ($step === 'email') {
        if (!preg_match('/[^\s@]+@[^\s@]+\.[a-z]{2,}/i', $message, $m)) {
            return 'Sorry, that email address does not look right. Could you enter it again?';
        }
        $session['contact']['email'] = strtolower($m[0]);
        $session['step'] = 'zip';
        return "Last one: what's your ZIP code?";
    }
    if (!preg_match('/\b\d{5}\b/', $message, $m)) {
        return 'Sorry, please enter a five-digit ZIP code.';
    }
    $session['contact']['zip'] = $m[0];
    $session['step'] = 'done';
    return 'Thank you. An attorney will contact you shortly.';
}

function handle_chat(string $dataDir): void
{
    $shadow = ($_SERVER['HTTP_X_SHADOW_REQUEST'] ?? '') === '1';
    $dir = $dataDir . ($shadow ? '/shadow_sessions' : '/sessions');
    if (!is_dir($dir)) {
        @mkdir($dir, 0700, true);
    }
    $raw = (string) file_get_contents('php://input');
    $body = json_decode($raw, true);
    if (!is_array($body) || !isset($body['message']) || !is_string($body['message'])) {
        reply_json(400, ['error' => 'invalid_request', 'detail' => 'send JSON with a "message" string']);
        return;
    }
    $message = trim($body['message']);
    if ($message === '' || strlen($message) > 4000) {
        reply_json(422, ['error' => 'invalid_field', 'detail' => 'message is empty or too long']);
        return;
    }
    $requested = is_string($body['sessionId'] ?? null) ? $body['sessionId'] : ($_COOKIE[COOKIE] ?? null);
    $session = load_session($dir, $requested) ?? [
        'id' => bin2hex(random_bytes(16)),
        'step' => 'describe',
        'category' => null,
        'description' => '',
        'asks' => 0,
        'contact' => [],
        'turns' => 0,
    ];
    $session['turns'] += 1;
    $wasDone = $session['step'] === 'done';
    $text = advance($session, $message);
    // The turn log `chatctl replay import-php` turns into a transcript (proxy/_transcript.py).
    $session['log'] = array_slice(array_merge($session['log'] ?? [], [[
        'message' => $message,
        'legacy' => [
            'status' => 200,
            'category' => $session['category'],
            'step' => $session['step'],
            'done' => $session['step'] === 'done',
            'contact' => (object) $session['contact'],
            'reply' => $text,
        ],
    ]]), -200);
    $file = "$dir/{$session['id']}.json";
    file_put_contents($file, json_encode($session), LOCK_EX);
    @chmod($file, 0600);  // it holds contact details
    if (!$shadow && !$wasDone && $session['step'] === 'done') {
        $lead = ['session' => $session['id'], 'category' => $session['category'], 'at' => time()];
        file_put_contents("$dataDir/leads.jsonl", json_encode($lead) . "\n", FILE_APPEND | LOCK_EX);
    }
    reply_json(200, [
        'sessionId' => $session['id'],
        'reply' => $text,
        'category' => $session['category'],
        'step' => $session['step'],
        'done' => $session['step'] === 'done',
        'contact' => (object) $session['contact'],
    ], [session_cookie($session['id'])]);
}

function handle_echo(): void
{
    $headers = [];
    foreach ($_SERVER as $key => $value) {
        if (str_starts_with($key, 'HTTP_')) {
            $headers[strtolower(str_replace('_', '-', substr($key, 5)))] = $value;
        }
    }
    if (isset($_SERVER['CONTENT_TYPE'])) {
        $headers['content-type'] = $_SERVER['CONTENT_TYPE'];
    }
    reply_json(201, [
        'method' => $_SERVER['REQUEST_METHOD'],
        'path' => parse_url($_SERVER['REQUEST_URI'], PHP_URL_PATH),
        'query' => $_SERVER['QUERY_STRING'] ?? '',
        'headers' => $headers,
        'cookies' => $_COOKIE,
        'body' => (string) file_get_contents('php://input'),
        'remote_addr' => $_SERVER['REMOTE_ADDR'] ?? '',
    ], ['first=1; Path=/', 'second=2; Path=/; HttpOnly']);
}

$path = parse_url($_SERVER['REQUEST_URI'], PHP_URL_PATH);
$hooks = getenv('LEGACY_TEST_HOOKS') === '1';
$sleepMs = $hooks ? (int) ($_GET['sleep_ms'] ?? 0) : 0;
if ($sleepMs > 0) {
    usleep(min($sleepMs, 60000) * 1000);
}
if ($hooks && ($_GET['debug'] ?? '') === 'echo') {
    handle_echo();
} elseif ($path === '/api/chat' && $_SERVER['REQUEST_METHOD'] === 'POST') {
    handle_chat($dataDir);
} elseif ($path === '/api/chat' && in_array($_SERVER['REQUEST_METHOD'], ['GET', 'HEAD'], true)) {
    reply_json(200, ['status' => 'ok', 'backend' => 'legacy']);
} elseif ($path === '/' || $path === '/index.php') {
    header('Content-Type: text/html');
    echo "<!doctype html><title>Legal help</title><p>Legacy site home page</p>\n";
} else {
    reply_json(404, ['error' => 'not_found', 'detail' => "no route for $path"]);
}
