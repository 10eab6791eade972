//! The ECS deployment circuit breaker's failed-task threshold.

/// The number of failed tasks at which the ECS deployment circuit breaker
/// fails a deployment: half the desired count (rounded up), at least 3 and
/// at most 200.
///
/// ```
/// use ecs_rollout::circuit_breaker_threshold;
/// assert_eq!(circuit_breaker_threshold(1), 3);
/// assert_eq!(circuit_breaker_threshold(9), 5);
/// assert_eq!(circuit_breaker_threshold(1000), 200);
/// ```
pub fn circuit_breaker_threshold(desired_count: i32) -> u32 {
    let half = (i64::from(desired_count.max(0)) + 1) / 2;
    half.clamp(3, 200) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threshold_table() {
        let cases = [
            (0, 3),
            (1, 3),
            (6, 3),
            (7, 4),
            (8, 4),
            (10, 5),
            (399, 200),
            (400, 200),
            (i32::MAX, 200),
            (-5, 3),
        ];
        for (desired, expected) in cases {
            assert_eq!(
                circuit_breaker_threshold(desired),
                expected,
                "desired {desired}"
            );
        }
    }
}
