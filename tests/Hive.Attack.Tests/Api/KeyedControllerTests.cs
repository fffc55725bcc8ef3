namespace Hive.Attack.Tests.Api;

/// <summary>
/// A Controller started with an API key, attacked by a caller without it: every spelling of every
/// route, every way of almost presenting the key, and paths that do not exist all answer 401 — and
/// nothing happens in the victim sandbox or on the host.
/// </summary>
[TestFixture]
[CancelAfter(900_000)]
[Category(From.Outside)]
public sealed partial class KeyedControllerTests : ApiAttackFixture
{
    private const string Key = "attack-suite-key-0123456789";
    private const string Create = """{"name": "pwned"}""";
    private const string Touch = """{"command": "touch /tmp/pwned"}""";
    private const string McpExec = """{"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "exec", "arguments": {"command": "touch /tmp/pwned"}}}""";
    private const string WebSocket = "websocket";

    protected override string? ApiKey => Key;

    [Defence("fallback authorization policy: every endpoint needs the key, however its path is spelled or encoded")]
    [TestCase("POST", "/API/v1/hiveboxes", Create, null)]
    [TestCase("POST", "/Api/V1/HiveBoxes", Create, null)]
    [TestCase("POST", "//api/v1/hiveboxes", Create, null)]
    [TestCase("POST", "/%61pi/v1/hiveboxes", Create, null)]
    [TestCase("POST", "/api%2Fv1%2Fhiveboxes", Create, null)]
    [TestCase("POST", "/%2Fapi/v1/hiveboxes", Create, null)]
    [TestCase("POST", "/API/v1/hiveboxes/{v}/exec", Touch, null)]
    [TestCase("POST", "/api/v1/hiveboxes/{v}/EXEC", Touch, null)]
    [TestCase("POST", "/api/../api/v1/hiveboxes/{v}/exec", Touch, null)]
    [TestCase("POST", "/api/v1/./hiveboxes/{v}/exec/", Touch, null)]
    [TestCase("POST", "/api./v1/hiveboxes/{v}/exec", Touch, null)]
    [TestCase("POST", "/API/v1/hiveboxes/{v}/exec/stream", Touch, null)]
    [TestCase("PUT", "/API/v1/hiveboxes/{v}/files?path=/tmp/pwned", "pwned", null)]
    [TestCase("GET", "/API/v1/hiveboxes/{v}/files?path=/etc/hostname", null, null)]
    [TestCase("PUT", "/API/v1/secrets/stolen", """{"value": "stolen-value"}""", null)]
    [TestCase("GET", "/API/v1/hiveboxes/{v}/events", null, null)]
    [TestCase("GET", "/Api/v1/events?follow=false", null, null)]
    [TestCase("POST", "/API/v1/hiveboxes/{v}/mcp", McpExec, null)]
    [TestCase("GET", "/API/v1/hiveboxes/{v}/proxy/9000/", null, null)]
    [TestCase("GET", "/API/v1/hiveboxes/{v}/proxy/9100/", null, WebSocket)]
    [TestCase("GET", "/api/v1/hiveboxes/{v}/exec/stream", null, WebSocket)]
    [TestCase("PATCH", "/API/v1/hiveboxes/{v}", """{"egress": {"allow": []}}""", null)]
    [TestCase("DELETE", "/API/v1/hiveboxes/{v}", null, null)]
    public async Task Any_spelling_of_a_route_without_the_key_is_401_and_does_nothing(string method, string target, string? body, string? upgrade)
    {
        var mark = await MarkAsync();
        var headers = new List<(string, string)> { Json };
        if (upgrade == WebSocket)
        {
            headers.AddRange([("Upgrade", "websocket"), ("Connection", "Upgrade"), ("Sec-WebSocket-Version", "13"), ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")]);
        }

        var response = await SendAsync(method, target, body, headers: [.. headers]);

        AssertRefused(response, 401);
        Assert.That(response.Header("WWW-Authenticate"), Is.EqualTo("Bearer"));
        Assert.That(response.Body, Does.Not.Contain(Victim).And.Not.Contain("data:"), "nothing of the sandbox is in the answer");
        await AssertNothingHappenedAsync(mark);
    }

    [Defence("the key is accepted only as one 'Authorization: Bearer <key>' header, compared in full")]
    [TestCase("Authorization: Bearer", null)]
    [TestCase("Authorization: Bearer ", null)]
    [TestCase("Authorization: Bearer{key}", null)]
    [TestCase("Authorization: Bearer\t{key}", null)]
    [TestCase("Authorization: Bearer    {short}    ", null)]
    [TestCase("Authorization: Bearer {key} {key}", null)]
    [TestCase("Authorization: Bearer {upper}", null)]
    [TestCase("Authorization: Bearer {key}x", null)]
    [TestCase("Authorization: Basic {basic}", null)]
    [TestCase("Authorization: Token {key}", null)]
    [TestCase("Authorization: {key}", null)]
    [TestCase("Authorization: Bearer wrong-key-0123456789|Authorization: Bearer {key}", null)]
    [TestCase("Cookie: api_key={key}; token={key}", null)]
    [TestCase("X-Api-Key: {key}", null)]
    [TestCase(null, "?api_key={key}&access_token={key}&key={key}")]
    public async Task A_missing_malformed_or_misplaced_key_is_401_and_runs_nothing(string? headerLines, string? query)
    {
        var mark = await MarkAsync();
        var headers = new List<(string, string)> { Json };
        foreach (var line in (headerLines ?? string.Empty).Split('|', StringSplitOptions.RemoveEmptyEntries))
        {
            var colon = line.IndexOf(':', StringComparison.Ordinal);
            headers.Add((line[..colon], Fill(line[(colon + 1)..].TrimStart(' '))));
        }

        var response = await SendAsync("POST", "/api/v1/hiveboxes/{v}/exec" + Fill(query ?? string.Empty), Touch, headers: [.. headers]);

        AssertRefused(response, 401);
        await AssertNothingHappenedAsync(mark);
    }

    [Defence("fallback authorization policy covers unknown paths: 401 before 404, so probing learns nothing")]
    [TestCase("/nope")]
    [TestCase("/api/v2/hiveboxes")]
    [TestCase("/api/v1/hiveboxes/{v}/nope")]
    [TestCase("/api/v1/hiveboxes/{v}/files/../../../../etc/passwd")]
    [TestCase("/.env")]
    [TestCase("/admin/config.json")]
    public async Task Unknown_paths_answer_exactly_like_known_ones_without_the_key(string path)
    {
        var known = await SendAsync("GET", "/api/v1/hiveboxes");
        var unknown = await SendAsync("GET", path);

        AssertRefused(unknown, 401);
        Assert.That(unknown.Body, Is.EqualTo(known.Body), "an unknown path must not answer differently from a known one");
        var withKey = await SendAsync("GET", path, headers: ("Authorization", "Bearer " + Key));
        Assert.That(withKey.Status, Is.EqualTo(404), "with the key the path is indeed unknown: " + withKey);
    }

    private static string Fill(string text) => text
        .Replace("{key}", Key, StringComparison.Ordinal)
        .Replace("{short}", Key[..^1], StringComparison.Ordinal)
        .Replace("{upper}", Key.ToUpperInvariant(), StringComparison.Ordinal)
        .Replace("{basic}", Convert.ToBase64String(System.Text.Encoding.UTF8.GetBytes("hive:" + Key)), StringComparison.Ordinal);
}
