using Hive.Controller.Forwarding;
using Microsoft.AspNetCore.Http;

namespace Hive.Controller.Tests;

/// <summary>The one header policy of ingress and MCP, as YARP's forwarder applies it through <see cref="SandboxTransformer"/>.</summary>
public sealed class HeaderPolicyTests
{
    [TestCase("close, X-Hop")]
    [TestCase("X-Hop")]
    [TestCase("keep-alive,x-hop")]
    public async Task Credentials_hop_by_hop_and_nominated_headers_stay_out(string connection)
    {
        var http = new DefaultHttpContext();
        http.Request.Headers.Connection = connection;
        http.Request.Headers["X-Hop"] = "v";
        http.Request.Headers.Authorization = "Bearer k";
        http.Request.Headers.Cookie = "a=b";
        http.Request.Headers["Proxy-Authorization"] = "Basic x";
        http.Request.Headers["X-Forwarded-Host"] = "evil.example";
        http.Request.Headers["Forwarded"] = "for=203.0.113.9";
        http.Request.Headers.Host = "controller.example";
        http.Request.Headers["X-Kept"] = "yes";
        using var request = new HttpRequestMessage(HttpMethod.Get, (Uri?)null);

        await new SandboxTransformer("/", host: null, forwardedPrefix: null).TransformRequestAsync(http, request, "http://sandbox", CancellationToken.None);

        Assert.That(request.Headers.Select(h => h.Key), Is.EquivalentTo(new[] { "X-Kept" }));
    }

    [Test]
    public async Task A_request_with_a_body_keeps_its_content_fields_and_loses_the_rest()
    {
        var http = new DefaultHttpContext();
        http.Request.Method = "POST";
        http.Request.Headers.Host = "controller.example";
        http.Request.Headers.Authorization = "Bearer k";
        http.Request.Headers.ContentType = "application/json";
        http.Request.Headers.ContentLength = 2;
        using var request = new HttpRequestMessage(HttpMethod.Post, (Uri?)null) { Content = new ByteArrayContent([]) };

        await new SandboxTransformer("/", host: "localhost:9000", forwardedPrefix: null).TransformRequestAsync(http, request, "http://sandbox", CancellationToken.None);

        Assert.That(request.Headers.Select(h => h.Key), Is.EquivalentTo(new[] { "Host" }));
        Assert.That(request.Headers.Host, Is.EqualTo("localhost:9000"));
        Assert.That(request.Content!.Headers.ContentType!.MediaType, Is.EqualTo("application/json"));
        Assert.That(request.Content.Headers.ContentLength, Is.EqualTo(2));
    }

    [Test]
    public async Task The_forwarders_own_host_and_forwarding_fields_replace_the_callers()
    {
        var http = new DefaultHttpContext();
        http.Request.Scheme = "http";
        http.Request.Host = new HostString("hive.example:7070");
        http.Request.Headers["X-Forwarded-Host"] = "evil.example";
        http.Request.Headers["X-Forwarded-Prefix"] = "/evil";
        using var request = new HttpRequestMessage(HttpMethod.Get, (Uri?)null);

        await new SandboxTransformer("/a%2Fb/c?x=%20y", host: "localhost:9000", forwardedPrefix: "/api/v1/hiveboxes/v/proxy/9000")
            .TransformRequestAsync(http, request, "http://v.sandbox:9000", CancellationToken.None);

        Assert.Multiple(() =>
        {
            Assert.That(request.Headers.Host, Is.EqualTo("localhost:9000"));
            Assert.That(request.Headers.GetValues("X-Forwarded-Host"), Is.EqualTo(new[] { "hive.example:7070" }));
            Assert.That(request.Headers.GetValues("X-Forwarded-Prefix"), Is.EqualTo(new[] { "/api/v1/hiveboxes/v/proxy/9000" }));
            Assert.That(request.Headers.GetValues("X-Forwarded-Proto"), Is.EqualTo(new[] { "http" }));
            Assert.That(request.RequestUri!.OriginalString, Is.EqualTo("http://v.sandbox:9000/a%2Fb/c?x=%20y"), "the caller's own encoding of the path");
            Assert.That(request.RequestUri.PathAndQuery, Is.EqualTo("/a%2Fb/c?x=%20y"));
        });
    }

    [Test]
    public async Task Cookies_and_origin_wide_headers_stay_in_and_the_answer_is_sandboxed()
    {
        using var response = new HttpResponseMessage(System.Net.HttpStatusCode.OK) { Content = new StringContent("x") };
        response.Headers.TryAddWithoutValidation("Set-Cookie", "a=b");
        response.Headers.TryAddWithoutValidation("Clear-Site-Data", "\"storage\"");
        response.Headers.TryAddWithoutValidation("WWW-Authenticate", "Basic");
        response.Headers.TryAddWithoutValidation("Strict-Transport-Security", "max-age=31536000");
        response.Headers.TryAddWithoutValidation("Connection", "X-Hop");
        response.Headers.TryAddWithoutValidation("X-Hop", "v");
        response.Headers.TryAddWithoutValidation("X-Kept", "yes");
        var http = new DefaultHttpContext();

        var proceed = await new SandboxTransformer("/", null, null).TransformResponseAsync(http, response, CancellationToken.None);

        Assert.That(proceed, Is.True);
        Assert.That(http.Response.Headers.Keys.Where(k => k != "Content-Length"), Is.EquivalentTo(new[] { "X-Kept", "Content-Type", "Content-Security-Policy", "X-Accel-Buffering" }));
        Assert.That(http.Response.Headers.ContentSecurityPolicy.ToString(), Does.StartWith("sandbox ").And.Not.Contain("allow-same-origin"));
    }

    [Test]
    public async Task A_sandbox_policy_that_allows_its_origin_does_not_replace_ours()
    {
        using var response = new HttpResponseMessage(System.Net.HttpStatusCode.OK) { Content = new StringContent("x") };
        response.Headers.TryAddWithoutValidation("Content-Security-Policy", "sandbox allow-scripts allow-same-origin");
        var http = new DefaultHttpContext();

        await new SandboxTransformer("/", null, null).TransformResponseAsync(http, response, CancellationToken.None);

        // Every policy a response carries is enforced: ours, without allow-same-origin, still applies.
        Assert.That(http.Response.Headers.ContentSecurityPolicy.ToArray(), Has.Member(HeaderPolicy.SandboxPolicy));
    }
}
