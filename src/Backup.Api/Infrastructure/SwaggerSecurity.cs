using Microsoft.OpenApi;
using Swashbuckle.AspNetCore.SwaggerGen;

namespace Backup.Api.Infrastructure;

public static class SwaggerSecurity
{
    /// <summary>"Authorize" in Swagger UI takes the whole header value, "ApiKey &lt;key&gt;", and sends it on every call.</summary>
    public static void AddAccessSecurity(this SwaggerGenOptions o)
    {
        o.AddSecurityDefinition(ApiKeyAuthenticationHandler.SchemeName, new OpenApiSecurityScheme
        {
            Type = SecuritySchemeType.ApiKey,
            In = ParameterLocation.Header,
            Name = "Authorization",
            Description = "People: 'ApiKey <key>' (a key from POST /api/access/keys, or the bootstrap admin key). Roles: admin, operator, auditor.",
        });
        o.AddSecurityRequirement(document => new OpenApiSecurityRequirement
        {
            [new OpenApiSecuritySchemeReference(ApiKeyAuthenticationHandler.SchemeName, document)] = [],
        });
        o.OperationFilter<SecurityPinParameter>();
    }

    /// <summary>Destructive operations show the X-Security-Pin header they need.</summary>
    private sealed class SecurityPinParameter : IOperationFilter
    {
        public void Apply(OpenApiOperation operation, OperationFilterContext context)
        {
            if (!context.ApiDescription.ActionDescriptor.EndpointMetadata.OfType<RequiresSecurityPin>().Any()) return;
            operation.Parameters ??= [];
            operation.Parameters.Add(new OpenApiParameter
            {
                Name = Backup.Commands.Access.SecurityPin.Header,
                In = ParameterLocation.Header,
                Required = true,
                Description = "A PIN from POST /api/access/security-pin (valid 5 minutes, once).",
                Schema = new OpenApiSchema { Type = JsonSchemaType.String },
            });
        }
    }
}
