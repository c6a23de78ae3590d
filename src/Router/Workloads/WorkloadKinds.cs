using Microsoft.Extensions.DependencyInjection;

namespace Recsys.Router.Workloads;

/// <summary>The one place a model kind's loader is registered with the front end.</summary>
public static class WorkloadKinds
{
    public static void Add(IServiceCollection services)
    {
        services.AddSingleton<WorkloadRegistry>();
        services.AddSingleton<IWorkloadLoader, Translation.TranslationLoader>();
        services.AddSingleton<IWorkloadLoader, Vision.VisionLoader>();
    }
}
