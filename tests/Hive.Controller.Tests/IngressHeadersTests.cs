using Hive.Controller.Ingress;
using Microsoft.AspNetCore.Http;

namespace Hive.Controller.Tests;

public sealed class IngressHeadersTests
{
    [TestCase("close, X-Hop")]
    [TestCase("X-Hop")]
    [TestCase("keep-alive,x-hop")]
    public void Credentials_hop_by_hop_and_nominated_headers_stay_out(string connection)
    {
        var http = new DefaultHttpContext();
        http.Request.Headers.Connection = connection;
        http.Request.Headers["X-Hop"] = "v";
        http.Request.Headers.Authorization = "Bearer k";
        http.Request.Headers.Cookie = "a=b";
        http.Request.Headers["Proxy-Authorization"] = "Basic x";
        http.Request.Headers["X-Forwarded-Host"] = "evil.example";
        http.Request.Headers["X-Kept"] = "yes";
        using var request = new HttpRequestMessage(HttpMethod.Get, "http://sandbox/");

        IngressHeaders.CopyRequest(http.Request, request);

        Assert.That(request.Headers.Select(h => h.Key), Is.EquivalentTo(new[] { "X-Kept" }));
    }

    [Test]
    public void Cookies_and_origin_wide_headers_stay_in_and_the_answer_is_sandboxed()
    {
        using var response = new HttpResponseMessage(System.Net.HttpStatusCode.OK) { Content = new StringContent("x") };
        response.Headers.TryAddWithoutValidation("Set-Cookie", "a=b");
        response.Headers.TryAddWithoutValidation("Clear-Site-Data", "\"storage\"");
        response.Headers.TryAddWithoutValidation("WWW-Authenticate", "Basic");
        response.Headers.TryAddWithoutValidation("X-Kept", "yes");
        var http = new DefaultHttpContext();

        IngressHeaders.CopyResponse(response, http.Response);

        Assert.That(http.Response.Headers.Keys, Is.EquivalentTo(new[] { "X-Kept", "Content-Type", "Content-Security-Policy" }));
        Assert.That(http.Response.Headers.ContentSecurityPolicy.ToString(), Does.StartWith("sandbox ").And.Not.Contain("allow-same-origin"));
    }
}
