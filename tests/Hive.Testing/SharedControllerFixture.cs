namespace Hive.Testing;

/// <summary>A fixture whose tests share one real Controller (each test uses its own sandbox names).</summary>
public abstract class SharedControllerFixture
{
    protected ControllerProcess Controller { get; private set; } = null!;

    [OneTimeSetUp]
    public async Task StartControllerAsync() => Controller = await ControllerProcess.StartAsync(apiKey: ApiKey);

    [OneTimeTearDown]
    public async Task StopControllerAsync() => await Controller.DisposeAsync();

    /// <summary>The API key the shared Controller requires; null = none.</summary>
    protected virtual string? ApiKey => null;
}
