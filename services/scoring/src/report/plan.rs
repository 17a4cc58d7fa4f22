//! The 90-day plan: three to five KPIs, each with a baseline, a goal and dates. The report and the
//! dashboard show where each stands between its baseline and its goal.

use chrono::NaiveDate;
use serde::Deserialize;

use super::kpis::Kpis;

/// What a plan KPI measures, and the month's value of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PlanKpi {
    /// Median minutes from opened to resolved.
    MttrMedianMinutes,
    MttrP90Minutes,
    /// Percent of SLA cycles met.
    SlaAttainment,
    /// Percent of changes that succeeded.
    ChangeSuccessRate,
    /// Percent of good ratings.
    Csat,
    OutageMinutes,
    /// Working hours released (capacity label).
    CapacityHours,
    /// Estimated cost avoided (avoided label).
    CostAvoided,
    /// Successful production deployments in the month.
    Deployments,
}

impl PlanKpi {
    pub fn name(self) -> &'static str {
        match self {
            PlanKpi::MttrMedianMinutes => "MTTR (median)",
            PlanKpi::MttrP90Minutes => "MTTR (P90)",
            PlanKpi::SlaAttainment => "SLA attainment",
            PlanKpi::ChangeSuccessRate => "Change success rate",
            PlanKpi::Csat => "Customer satisfaction",
            PlanKpi::OutageMinutes => "Outage minutes (P1–P2)",
            PlanKpi::CapacityHours => "Capacity released",
            PlanKpi::CostAvoided => "Cost avoided (estimate)",
            PlanKpi::Deployments => "Production deployments",
        }
    }

    /// Whether smaller is better (time to restore, outage minutes).
    pub fn lower_is_better(self) -> bool {
        matches!(
            self,
            PlanKpi::MttrMedianMinutes | PlanKpi::MttrP90Minutes | PlanKpi::OutageMinutes
        )
    }

    /// The month's value, in the plan's unit (percent for rates).
    pub fn value(self, k: &Kpis) -> Option<f64> {
        use herald_proto::v1::ValueLabel;
        let label = |l: ValueLabel| k.by_label.iter().find(|s| s.label == l);
        match self {
            PlanKpi::MttrMedianMinutes => k.mttr_median_minutes,
            PlanKpi::MttrP90Minutes => k.mttr_p90_minutes,
            PlanKpi::SlaAttainment => k.sla_attainment.map(|r| r * 100.0),
            PlanKpi::ChangeSuccessRate => k.change_success_rate.map(|r| r * 100.0),
            PlanKpi::Csat => k.csat.map(|r| r * 100.0),
            PlanKpi::OutageMinutes => Some(k.outage_minutes),
            PlanKpi::CapacityHours => Some(label(ValueLabel::Capacity).map_or(0.0, |s| s.hours)),
            PlanKpi::CostAvoided => Some(label(ValueLabel::Avoided).map_or(0.0, |s| s.amount)),
            PlanKpi::Deployments => k.deployments.map(|d| d as f64),
        }
    }
}

/// `[[scoring.plan]]`: one KPI of the 90-day plan.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PlanGoal {
    pub kpi: PlanKpi,
    pub baseline: f64,
    pub goal: f64,
    pub start: NaiveDate,
    pub end: NaiveDate,
}

impl PlanGoal {
    /// How far the current value has come from the baseline towards the goal, 0–1 (beyond 1 when
    /// the goal is passed, below 0 when it went the wrong way).
    pub fn progress(&self, current: f64) -> f64 {
        let span = self.goal - self.baseline;
        if span == 0.0 {
            return 1.0;
        }
        (current - self.baseline) / span
    }
}

/// Checks a plan: three to five KPIs, each once, its dates in order, a goal that differs from its
/// baseline.
pub fn validate(plan: &[PlanGoal]) -> Result<(), String> {
    if plan.is_empty() {
        return Ok(());
    }
    if !(1..=5).contains(&plan.len()) {
        return Err(format!(
            "a 90-day plan has at most 5 KPIs, not {}: executives remember three",
            plan.len()
        ));
    }
    for (i, goal) in plan.iter().enumerate() {
        if plan[..i].iter().any(|g| g.kpi == goal.kpi) {
            return Err(format!("{} is in the plan twice", goal.kpi.name()));
        }
        if goal.end <= goal.start {
            return Err(format!("{}: end must be after start", goal.kpi.name()));
        }
        if goal.goal == goal.baseline {
            return Err(format!("{}: the goal equals the baseline", goal.kpi.name()));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_runs_from_baseline_to_goal_either_way() {
        let mttr = PlanGoal {
            kpi: PlanKpi::MttrMedianMinutes,
            baseline: 120.0,
            goal: 60.0,
            start: "2026-10-01".parse().expect("date"),
            end: "2026-12-31".parse().expect("date"),
        };
        assert_eq!(mttr.progress(90.0), 0.5);
        assert_eq!(mttr.progress(150.0), -0.5);
        let mut twice = vec![mttr.clone(), mttr.clone()];
        assert!(validate(&twice).is_err());
        twice.pop();
        assert!(validate(&twice).is_ok());
    }
}
