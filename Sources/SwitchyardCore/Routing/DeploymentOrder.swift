import Foundation

/// The order in which a request tries a model's deployments: by `priority` (lower first), and
/// within one priority a random order in which each deployment comes first with a probability
/// proportional to its `weight`, so that traffic is shared by weight while every deployment of the
/// priority stays available as a retry target.
public enum DeploymentOrder {
    public static func ordered<R: RandomNumberGenerator>(
        _ deployments: [ModelConfig.Deployment], using random: inout R
    ) -> [ModelConfig.Deployment] {
        guard deployments.count > 1 else { return deployments }
        // Weighted sampling without replacement (Efraimidis–Spirakis): sorting by an exponential
        // variate divided by the weight gives each order its weighted probability in one pass.
        let keyed = deployments.map { deployment -> (ModelConfig.Deployment, Double) in
            let uniform = Double.random(in: Double.leastNonzeroMagnitude..<1, using: &random)
            return (deployment, -Foundation.log(uniform) / Double(max(deployment.weight, 1)))
        }
        return keyed.sorted { lhs, rhs in
            lhs.0.priority != rhs.0.priority ? lhs.0.priority < rhs.0.priority : lhs.1 < rhs.1
        }.map(\.0)
    }
}
